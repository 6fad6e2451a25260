"""The processpool engine: pre-forked worker processes sharing the listening socket.

Model (pre-fork, as Apache's prefork MPM and gunicorn's sync workers): the parent binds the
listening sockets, forks ``--workers`` processes (default: the CPU count) and supervises them: a
worker that dies is replaced, SIGTERM/SIGINT is passed on to every worker, and the parent exits
when they have drained. Each worker is single-threaded and serves with blocking I/O: it polls the
shared listening socket and its idle keep-alive connections, and when one has a request it reads,
runs the handler and writes the answer inline. A handler that awaits ``app.wait(s)`` blocks the
whole process in ``time.sleep``.

What it costs: a waiting request holds a process, so throughput on a waiting workload is
``workers / wait``. In exchange there is no GIL between workers: ``/cpu`` work scales with the
number of processes. Memory is one interpreter per worker. HTTP/2 streams of one connection are
served one after another, in order, by the worker that owns the connection (no concurrency
between streams); concurrency comes from connections spread over workers. The cost is head-of-line
blocking inside a connection: 20 streams of ``/io?ms=200`` multiplexed on one connection take
20 x 200 ms = 4 s here, against about 200 ms on threadpool, selectors and asyncio
(tests/engines/test_http2.py checks both).

Connections are not moved between workers: a worker accepts one connection per wake-up of the
shared listener (``accept_batch = 1``), so that a burst of new connections is shared. When the
workers share one core, the first one woken can still take every connection that sends no
request at once (HTTP/2 clients send a preface first); its peers then idle while it serves them
all. Per-worker ``SO_REUSEPORT`` listeners would let the kernel balance them; not done here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import socket
import time
from typing import Any, Callable

from .config import ServerConfig
from .listeners import Listener
from .threadpool import PollingEngine

__all__ = ["ProcessPoolEngine"]

log = logging.getLogger("lab.processpool")

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _WorkerEngine(PollingEngine):
    """Inside one worker process: the polling loop with every job run inline.

    ``counts`` is an array in shared memory with one slot per worker: each worker writes its own
    number of open connections there and checks ``--max-connections`` against the sum, so the
    limit holds for the whole server, not per process.
    """

    name = "processpool"
    accept_batch = 1

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener],
                 counts: Any = None, slot: int = 0) -> None:
        super().__init__(app, config, listeners)
        self.counts = counts
        self.slot = slot

    def _dispatch(self, job: Callable[..., None], *args: Any) -> bool:
        job(*args)
        self._run_commands()
        return True

    def poll_forever(self) -> None:
        """The polling loop, once this worker's own SIGTERM/SIGINT handlers are in place: only
        then are the signals that ``_spawn`` blocked around the fork let through."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        super().poll_forever()

    def _after_sleep(self) -> None:
        # A SIGTERM that came while the handler waited: start the drain before its response is
        # written, so that it already carries Connection: close.
        self._run_commands()

    def _connection_count(self) -> int:
        return sum(self.counts) if self.counts is not None else len(self.connections)

    def _connections_changed(self) -> None:
        if self.counts is not None:
            self.counts[self.slot] = len(self.connections)


class ProcessPoolEngine:
    """Fork ``--workers`` processes that share the listeners; supervise and replace them."""

    name = "processpool"

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.size = config.workers or os.cpu_count() or 2
        self.children: dict[int, int] = {}  # pid -> slot
        # open connections per worker slot, in shared memory (inherited by fork)
        self.counts = multiprocessing.RawArray("i", self.size)
        self.stopping = False
        metrics = getattr(app, "metrics", None)
        if metrics is not None:  # one in-flight gauge for the whole server, in shared memory
            metrics.share_in_flight(multiprocessing.Value("i", 0))

    def describe(self) -> str:
        """A few words for the start-up line."""
        return f"{self.size} worker processes"

    def serve(self) -> None:
        """Fork the workers, replace any that die, and on SIGINT/SIGTERM stop them all."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old_fd = signal.set_wakeup_fd(wake_w.fileno())
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() below
        try:
            for slot in range(self.size):
                self._spawn(slot)
            while self.children and not self.stopping:
                self._reap()
                select.select([wake_r], [], [], 1.0)
                try:
                    while wake_r.recv(512):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
        finally:
            self._kill_stragglers()
            for s, handler in old.items():
                signal.signal(s, handler)
            signal.signal(signal.SIGCHLD, old_chld)
            signal.set_wakeup_fd(old_fd)
            wake_r.close()
            wake_w.close()
            for listener in self.listeners:
                listener.sock.close()

    def _reap(self) -> None:
        """Collect exited workers; start a replacement for each unless stopping."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is not None and not self.stopping:
                log.warning("worker %d exited (status %d); starting a new one", pid, status)
                self._spawn(slot)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _kill_stragglers(self) -> None:
        deadline = time.monotonic() + self.config.drain_timeout + 2
        while self.children and time.monotonic() < deadline:
            time.sleep(0.05)
            for pid in list(self.children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self.children.pop(pid, None)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def _spawn(self, slot: int) -> None:
        self.counts[slot] = 0  # a dead worker's connections died with it
        # A SIGTERM between the fork and the worker's own handlers would run the parent's handler
        # (inherited) in the child, and the worker would never drain: block the stop signals
        # across the fork; the worker unblocks them once its handlers are set (poll_forever).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self.children[pid] = slot
            return
        code = 0
        try:
            worker = _WorkerEngine(self.app, self.config, self.listeners, self.counts, slot)
            worker.serve()
        except BaseException:
            log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            os._exit(code)
