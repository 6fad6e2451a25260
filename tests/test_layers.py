"""The layering rules of DESIGN.md, checked with ast."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {"socket", "ssl", "select", "selectors", "threading", "multiprocessing", "concurrent",
             "asyncio", "time"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_is_sans_io():
    files = sorted((ROOT / "protocol").rglob("*.py"))
    assert files, "protocol/ has no modules"
    bad = {str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN) for f in files}
    bad = {k: v for k, v in bad.items() if v}
    assert bad == {}


def test_forbidden_import_is_detected(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import socket\nfrom asyncio import sleep\n")
    assert _imports(f) & FORBIDDEN == {"socket", "asyncio"}


def test_handlers_never_import_asyncio():
    for f in sorted((ROOT / "app").rglob("*.py")):
        assert "asyncio" not in _imports(f), f


def _package_imports(package: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (relative or absolute; every import
    statement, those under ``if TYPE_CHECKING:`` and inside functions included)."""
    name = package.name
    graph: dict[str, set[str]] = {}
    for f in sorted(package.glob("*.py")):
        mod = f.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    if node.module:
                        deps.add(node.module.split(".")[0])
                    else:
                        deps.update(a.name for a in node.names)
                elif node.level == 0 and node.module and node.module.split(".")[0] == name:
                    rest = node.module.split(".")[1:]
                    deps.update([rest[0]] if rest else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] == name and len(parts) > 1:
                        deps.add(parts[1])
        modules = {p.stem for p in package.glob("*.py")}
        graph[mod] = {d for d in deps if d in modules and d != mod}
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_engines_have_no_import_circle():
    """engines/ imports form no circle (the session, its exchanges and tasks, the glue, the
    lifecycle and the supervisor each depend one way)."""
    graph = _package_imports(ROOT / "engines")
    assert len(graph) > 10
    assert _circle(graph) is None, " -> ".join(_circle(graph))


def test_a_circle_is_detected(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import y\n")
    assert _circle(_package_imports(pkg)) == ["a", "b", "a"]


def test_no_protocol_branch_in_the_engines_outside_the_glue():
    """The engines never ask which HTTP they speak: ``multiplexed`` (the protocol objects' flag)
    appears in engines/ nowhere, the per-protocol glue (engines/glue.py) holding what differs."""
    hits = [f"{f.name}:{i}" for f in sorted((ROOT / "engines").glob("*.py")) if f.name != "glue.py"
            for i, line in enumerate(f.read_text().splitlines(), 1) if "multiplexed" in line]
    assert hits == []
