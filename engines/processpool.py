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
all. ``--reuse-port`` gives each worker a ``SO_REUSEPORT`` listener of its own (the parent only
holds the port, bound and not listening): the kernel then spreads new connections over the
workers by a hash of their addresses, and each worker accepts from its own queue in batches; the
price is that a stalled worker's queue keeps its share of new connections, which wait.
``python -m loadtest.reuseport`` measures both modes (results/reuseport/).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import select
import signal
import socket
import time
from typing import Any, Callable

from .blocking import BlockingEngine, Connection
from .config import ServerConfig
from .lifecycle import SignalCommands
from .listeners import Listener, bind
from .tasks import Task

__all__ = ["ProcessPoolEngine"]

log = logging.getLogger("lab.processpool")

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Worker(BlockingEngine):
    """Inside one worker process: the lifecycle's loop with every job run inline.

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
        if config.reuse_port:  # its own accept queue: no burst to share with the others
            self.accept_batch = 64

    # -- the model: where a job runs ----------------------------------------------------------

    def start(self) -> None:
        """This worker's own SIGTERM/SIGINT handlers are in place: only now are the signals that
        ``_spawn`` blocked around the fork let through."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def dispatch(self, job: Callable[..., None], conn: Connection, *args: Any) -> bool:
        """Run ``job(conn, *args)`` here and now (the process blocks), then take commands."""
        job(conn, *args)
        self.run_commands()
        return True

    def on_sleep(self, conn: Connection, task: Task, seconds: float) -> bool:
        """Block the whole process for the wait, in ``select`` on the wake-up channel: a SIGTERM
        meanwhile starts the drain at once (the listeners close, the response in progress will
        carry Connection: close), then the wait goes on."""
        self.flush(conn)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not task.cancelled:
            if select.select([self.wake_r], [], [], left)[0]:
                self.drain_wakeups()
                self.run_commands()
        return True

    def connection_count(self) -> int:
        """Open connections of every worker (shared memory)."""
        return sum(self.counts) if self.counts is not None else len(self.connections)

    def connections_changed(self) -> None:
        """Publish this worker's count of open connections."""
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
        # handlers in flight per worker slot, in shared memory: /_metrics reports the sum
        self.in_flight = multiprocessing.RawArray("i", self.size)

    def describe(self) -> str:
        """A few words for the start-up line."""
        return f"{self.size} worker processes"

    def serve(self) -> None:
        """Fork the workers, replace any that die, and on SIGINT/SIGTERM stop them all."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        commands: queue.SimpleQueue = queue.SimpleQueue()
        old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() below
        try:
            with SignalCommands(commands, wake_w):
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
                    if not commands.empty():
                        self._stop_workers()
                self._kill_stragglers()
        finally:
            signal.signal(signal.SIGCHLD, old_chld)
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

    def _stop_workers(self) -> None:
        """Pass the stop on to every worker (each drains its own connections) and close this
        process's copies of the listeners, so that the kernel refuses new connections once the
        workers have closed theirs."""
        self.stopping = True
        for listener in self.listeners:
            listener.sock.close()
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
        # across the fork; the worker unblocks them once its handlers are set (_Worker.start).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self.children[pid] = slot
            return
        code = 0
        try:
            metrics = getattr(self.app, "metrics", None)
            if metrics is not None:
                metrics.share_in_flight(self.in_flight, slot)
            listeners = self.listeners
            if self.config.reuse_port:  # this worker's own listening sockets in the group
                listeners = [Listener(bind(*lst.address, self.config.backlog, reuse_port=True), lst.tls)
                             for lst in self.listeners]
                for lst in self.listeners:
                    lst.sock.close()
            worker = _Worker(self.app, self.config, listeners, self.counts, slot)
            worker.serve()
        except BaseException:
            log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            os._exit(code)
