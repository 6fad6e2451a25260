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
    if workers > 1 and "interpreter" not in args:  # the supervisor forks its workers after the listening line
        await_workers(server, workers)
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
def server(engine, tmp_path):
    """A server of ``engine`` with default options, stopped after the test."""
    srv = start_server(engine, tmp_path=tmp_path)
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
