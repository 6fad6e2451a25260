"""Which Python the servers run on: the interpreter as a dimension of every experiment.

``python -m loadtest experiment NAME --python python3,scripts/python3.14`` runs the servers (the
engines and the peers) under each interpreter in turn; every server command the harness builds
starts with :func:`python`, and every row records :func:`current`'s ``label`` (version and build)
and ``gil`` (``sys._is_gil_enabled()`` where it exists: a free-threaded 3.14t row says ``no``).
The load generators and the harness itself stay on the Python that runs them.

The current interpreter is process-wide harness state, set only by :func:`use` (a context
manager) around the experiments of one interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator

__all__ = ["Interpreter", "probe", "current", "python", "use", "PEER_MODULES"]

#: the modules the peers are started with (``python -m MODULE``): probed, so that a peer missing
#: under one interpreter is left out of that interpreter's rows instead of failing the run
PEER_MODULES = ("uvicorn", "httptools", "hypercorn", "gunicorn", "granian")

_PROBE = r"""
import json, os, platform, sys, sysconfig, importlib.util
args = sysconfig.get_config_var("CONFIG_ARGS") or ""
gil = getattr(sys, "_is_gil_enabled", lambda: True)()
build = [platform.python_compiler(), "built " + " ".join(platform.python_build()[1].split()[:3])]
build += [b for b, on in (("PGO", "--enable-optimizations" in args), ("LTO", "--with-lto" in args)) if on]
mods = [m for m in MODULES if importlib.util.find_spec(m) is not None]
print(json.dumps({"version": list(sys.version_info[:3]), "implementation": platform.python_implementation(),
                  "build": build, "gil": gil, "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                  "executable": sys.executable, "modules": mods, "python_gil": os.environ.get("PYTHON_GIL")}))
"""


@dataclass(frozen=True)
class Interpreter:
    """A Python that servers are started with.

    ``command``: what starts it (``sys.executable``, ``python3``, ``scripts/python3.14``);
    ``label``: the rows' ``python`` column, the version and the build, e.g. ``CPython 3.14.10 (GCC
    16.2.0, built Oct 26 2026)`` (``PGO``, ``LTO``, ``free-threaded`` added when the build says so,
    and ``PYTHON_GIL=V`` when the variable is set, as scripts/python3.14t-gil sets it);
    ``gil``: ``"yes"`` or ``"no"`` (the rows' ``gil`` column); ``version``: ``(major, minor)``;
    ``modules``: which of :data:`PEER_MODULES` it can import."""

    command: str
    label: str
    gil: str
    version: tuple[int, int]
    modules: frozenset[str] = frozenset()
    #: a free-threaded build (3.14t), whether its GIL is off (``gil`` "no") or turned on (PYTHON_GIL=1)
    free_threaded: bool = False

    @property
    def interpreter_workers(self) -> bool:
        """True when ``./start_server --worker-kind interpreter`` runs on it (Python >= 3.14)."""
        return self.version >= (3, 14)

    def has(self, module: str) -> bool:
        """Whether ``python -m module`` can start under it. granian's free-threaded build refuses
        to run with the GIL turned back on ("Cannot run a free-threaded Granian build with GIL
        enabled"): left out under PYTHON_GIL=1."""
        if module == "granian" and self.free_threaded and self.gil == "yes":
            return False
        return module in self.modules


def probe(command: str) -> Interpreter:
    """Ask ``command`` what it is.

    Raises:
        OSError: ``command`` cannot be run or does not answer like a Python.
    """
    path = command if os.sep not in command else os.path.abspath(command)
    try:
        out = subprocess.run([path, "-c", _PROBE.replace("MODULES", repr(PEER_MODULES))],
                             capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"{command}: {exc}") from exc
    if out.returncode != 0:
        raise OSError(f"{command} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    major, minor, micro = info["version"]
    build = list(info["build"]) + (["free-threaded"] if info["free_threaded"] else [])
    if info.get("python_gil") is not None:
        build.append(f"PYTHON_GIL={info['python_gil']}")
    label = f"{info['implementation']} {major}.{minor}.{micro}" + (f" ({', '.join(build)})" if build else "")
    return Interpreter(path, label, "yes" if info["gil"] else "no", (major, minor), frozenset(info["modules"]),
                       bool(info["free_threaded"]))


_STACK: list[Interpreter] = []


def current() -> Interpreter:
    """The interpreter servers start with now (by default the one running the harness)."""
    if not _STACK:
        _STACK.append(probe(sys.executable))
    return _STACK[-1]


def python() -> str:
    """The command that starts a server's Python now (``current().command``)."""
    return current().command


@contextlib.contextmanager
def use(interpreter: Interpreter) -> Iterator[Interpreter]:
    """Start servers with ``interpreter`` inside the ``with`` block."""
    _STACK.append(interpreter)
    try:
        yield interpreter
    finally:
        _STACK.pop()
