"""Start a real ``./start_server`` on a free port of 127.0.0.1 for each engine.

The fixture reads the port from the server's start-up line (``--port 0``), and stops the process it
started with SIGTERM (SIGKILL if it does not exit), by its pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest

from engines import ENGINES as ALL_ENGINES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = list(ALL_ENGINES)
LINE = re.compile(r"listening on (https?)://([^\s]+):(\d+) ")


@dataclass
class Server:
    """A running ``./start_server``: its process, engine and the ports it printed."""

    proc: subprocess.Popen
    engine: str
    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int | None = None
    lines: list[str] = field(default_factory=list)
    _drain: threading.Thread | None = None
    _seen: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server and wait for it; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._drain is not None:
            self._drain.join(5)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return self.proc.returncode

    def drain_stdout(self) -> None:
        """Keep reading the server's stdout into ``lines`` so that it never blocks on a full pipe."""
        def pump() -> None:
            for line in self.proc.stdout:
                with self._seen:
                    self.lines.append(line)
                    self._seen.notify_all()
            with self._seen:
                self._seen.notify_all()
        self._drain = threading.Thread(target=pump, daemon=True)
        self._drain.start()


def start_server(engine: str, *args: str, tmp_path=None, env=None, python: str | None = None,
                 stderr=None) -> Server:
    """Start ``PYTHON ./start_server --engine ENGINE --port 0 ARGS`` and wait for its listening
    line(s). ``python``: the interpreter (default: this one); ``stderr``: a file for its log.

    Raises:
        RuntimeError: the server exited or printed no listening line within 30 s.
    """
    cmd = [python or sys.executable, os.path.join(ROOT, "start_server"), "--engine", engine, "--port", "0",
           "--log-level", "WARNING", *args]
    if tmp_path is not None and "--data-dir" not in args:
        cmd += ["--data-dir", str(tmp_path / "data")]
    if engine == "processpool" and "--workers" not in args:
        cmd += ["--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                            env=env, start_new_session=True)
    server = Server(proc=proc, engine=engine)
    want = 2 if "--tls-port" in args else 1
    # A thread reads stdout from the start (select() on a text pipe misses lines already
    # buffered by a previous readline, e.g. the second listening line of --tls-port).
    server.drain_stdout()

    def listening() -> int:
        return sum(1 for line in server.lines if LINE.search(line))

    with server._seen:
        server._seen.wait_for(lambda: listening() >= want or proc.poll() is not None, timeout=30)
    if listening() < want:
        server.stop(signal.SIGKILL)
        raise RuntimeError(f"server {engine} did not start: {server.lines}")
    workers = int(args[list(args).index("--workers") + 1]) if "--workers" in args else (
        2 if engine == "processpool" else 1)
    if workers > 1 and "interpreter" not in args and "thread" not in args:  # forked after the listening line
        try:
            await_workers(server, workers)
        except AssertionError:
            server.stop(signal.SIGKILL)
            raise
    for line in list(server.lines):
        m = LINE.search(line)
        if m and m.group(1) == "https" and ("--tls-port" in args):
            server.tls_port = int(m.group(3))
        elif m:
            server.port = int(m.group(3))
            if m.group(1) == "https":
                server.tls_port = server.port
    return server


def worker_pids(server: Server) -> list[int]:
    """The pids of the supervisor's worker processes (its children), oldest first."""
    children = psutil.Process(server.proc.pid).children()
    return [c.pid for c in sorted(children, key=lambda c: c.create_time())]


def await_workers(server: Server, count: int, exclude: tuple[int, ...] = (), timeout: float = 30.0) -> list[int]:
    """Poll until the supervisor has ``count`` workers, none of them in ``exclude`` (pids that
    were killed); returns their pids.

    Raises:
        AssertionError: not so within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in worker_pids(server) if p not in exclude]
        if len(pids) >= count:
            return pids
        time.sleep(0.02)
    raise AssertionError(f"the supervisor has {worker_pids(server)}, not {count} workers beside {exclude}")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Each of the four engines."""
    return request.param


@pytest.fixture
def started():
    """A list to put the servers a test starts in; each is stopped after the test."""
    servers: list[Server] = []
    yield servers
    for srv in servers:
        srv.stop()


def published(board) -> bool:
    """Every worker on the supervisor's ``board`` has published its metrics (it is serving)."""
    return all(board.read(i) is not None for i in range(board.size))


PY314T = os.path.join(ROOT, "scripts", "python3.14t")


def _usable(command: str, check: str) -> tuple[bool, str]:
    """Whether ``command -c check`` prints True; with the reason when not."""
    try:
        out = subprocess.run([command, "-c", check], capture_output=True, text=True, timeout=1800)
        return out.returncode == 0 and out.stdout.strip() == "True", out.stderr.strip()[-800:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)


_FOUND: dict[str, str] = {}


def other_python(which: str) -> str:
    """The command that starts servers under ``which`` (``"3.14"``: scripts/python3.14, a GIL build;
    ``"3.14t"``: scripts/python3.14t, free-threaded). Skips the test (with the reason) when there is
    none; with ``LAB_REQUIRE_PY314=1`` / ``LAB_REQUIRE_PY314T=1`` (CI) fails instead."""
    if which in _FOUND:
        return _FOUND[which]
    if which == "3.14":
        command, require = PY314, "LAB_REQUIRE_PY314"
        check = "import sys, sysconfig; print(sys.version_info >= (3, 14) and not sysconfig.get_config_var('Py_GIL_DISABLED'))"
    else:
        command, require = PY314T, "LAB_REQUIRE_PY314T"
        check = "import sys, sysconfig; print(sys.version_info >= (3, 14) and bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"
    ok, why = _usable(command, check)
    if not ok:
        if os.environ.get(require) == "1":
            pytest.fail(f"scripts/python{which} is not usable, and {require}=1: {why}")
        pytest.skip(f"no Python {which} here (scripts/python{which}: {why}); CI provisions one")
    _FOUND[which] = command
    return command


#: the Pythons the ``server`` fixture starts its servers under: this one, Debian's 3.14 (GIL) and
#: a free-threaded 3.14t (scripts/python3.14 and scripts/python3.14t)
SERVER_PYTHONS = ["this", "3.14", "3.14t"]


@pytest.fixture(params=SERVER_PYTHONS, ids=lambda p: f"py{p}" if p != "this" else "py")
def server_python(request) -> str | None:
    """The Python a test's server runs under (``None``: this one). A Python that is this one
    already (pytest run under 3.14t, say) is skipped as a repeat."""
    which = request.param
    if which == "this":
        return None
    free = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if sys.version_info[:2] == (3, 14) and free == (which == "3.14t"):
        pytest.skip(f"this Python is {which} already")
    return other_python(which)


@pytest.fixture
def server(engine, server_python, tmp_path):
    """A server of ``engine`` with default options, under each Python of ``server_python``,
    stopped after the test."""
    srv = start_server(engine, tmp_path=tmp_path, python=server_python)
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(tmp_path):
    """Start servers with custom options; all are stopped after the test."""
    started: list[Server] = []

    def make(engine: str, *args: str) -> Server:
        srv = start_server(engine, *args, tmp_path=tmp_path)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


PY314 = os.path.join(ROOT, "scripts", "python3.14")


@pytest.fixture(scope="session")
def python314() -> str:
    """A Python 3.14 command to start servers with: this interpreter when it is 3.14 or newer, else
    ``scripts/python3.14`` (the machine's own python3.14, or a Debian sid root it provisions).

    Skips (with the reason) when there is none; with ``LAB_REQUIRE_PY314=1`` (CI) fails instead."""
    if sys.version_info >= (3, 14):
        return sys.executable
    try:
        out = subprocess.run([PY314, "-c", "import sys; print(sys.version_info >= (3, 14))"],
                             capture_output=True, text=True, timeout=900)
        ok, why = out.returncode == 0 and out.stdout.strip() == "True", out.stderr.strip()[-800:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, str(exc)
    if not ok:
        if os.environ.get("LAB_REQUIRE_PY314") == "1":
            pytest.fail(f"scripts/python3.14 is not usable, and LAB_REQUIRE_PY314=1: {why}")
        pytest.skip(f"no Python 3.14 here (scripts/python3.14: {why}); CI provisions one")
    return PY314
