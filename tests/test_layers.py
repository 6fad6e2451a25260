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
