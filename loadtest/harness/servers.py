"""Servers the bench starts and stops: on a free port of 127.0.0.1, pinned to a core, each the
leader of its own process group, polled until it accepts, stopped by SIGTERM to that group.
Only processes this module started are ever signalled.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import psutil

from loadtest.harness.generators import BenchError, pinned

__all__ = ["ServerSpec", "RunningServer", "running", "free_port", "pinned", "check_plaintext", "HOST",
           "ROOT", "EXPECTED_BODY"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = "127.0.0.1"
EXPECTED_BODY = b"Hello, World!"


@dataclass(frozen=True, kw_only=True)
class ServerSpec:
    """How to start one server on a given port: ``argv(port)``; ``kind`` is engine or peer."""

    name: str
    kind: str
    argv: Callable[[int], list[str]]
    description: str = ""


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class RunningServer:
    """A server process this harness started, leader of its own process group."""

    def __init__(self, spec: ServerSpec, port: int, core: int | None, log_path: str, env: dict) -> None:
        self.spec = spec
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(pinned(spec.argv(port), core), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._known: dict[int, psutil.Process] = {}
        self.startup_s: float | None = None

    def log_tail(self, lines: int = 8) -> str:
        self._log.flush()
        with open(self.log_path, "rb") as f:
            text = f.read()[-4000:].decode("utf-8", "replace")
        tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
        errors = [line for line in tail if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line)]
        return " | ".join(errors[-1:] + [line for line in tail if line not in errors[-1:]])

    def tree(self) -> list[psutil.Process]:
        """The server process and its descendants now (remembered, for a clean stop)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for p in procs:
            self._known.setdefault(p.pid, p)
        return procs

    def cpu_seconds(self) -> float:
        """User + system CPU time of the tree's live processes (s)."""
        total = 0.0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def affinity(self) -> list[int]:
        """The CPUs the tree may run on (union)."""
        cores: set[int] = set()
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                cores.update(p.cpu_affinity())
        return sorted(cores)

    def wait_ready(self, timeout: float) -> float:
        """Poll the port until it accepts a connection; returns seconds taken.

        Raises:
            BenchError: the process exited, or the port did not open within ``timeout`` s.
        """
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"port {self.port} not open after {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.02)  # a poll interval, not a synchronisation

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the process group (the leader is alive, so the group id is still ours), wait,
        SIGKILL after ``grace`` s; then kill any descendant seen earlier that outlived it."""
        self.tree()
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
            left = [p for p in self._known.values() if p.pid != self.proc.pid and p.is_running()]
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.terminate()
            _, alive = psutil.wait_procs(left, timeout=3)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
        finally:
            self._log.close()


@contextlib.contextmanager
def running(spec: ServerSpec, core: int | None, log_dir: str, env: dict, start_timeout: float
            ) -> Iterator[RunningServer]:
    """Start ``spec`` on a free port, wait until it accepts, yield it; always stop it."""
    port = free_port()
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", spec.name)  # "selectors (A/A)" -> selectors_A_A_
    server = RunningServer(spec, port, core, os.path.join(log_dir, f"{safe}-{port}.log"), env)
    try:
        server.startup_s = server.wait_ready(start_timeout)
        yield server
    finally:
        server.stop()


def check_plaintext(port: int, path: str) -> None:
    """One ``GET path`` with http.client: 200 and ``Hello, World!`` (for /plaintext).

    Raises:
        BenchError: any other answer, or no answer.
    """
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"GET {path} failed: {exc!r}") from None
    finally:
        conn.close()
    if resp.status != 200 or (path == "/plaintext" and body != EXPECTED_BODY):
        raise BenchError(f"GET {path} answered {resp.status} {body[:60]!r}")
