"""Copies of an engine that run in threads of the supervisor's own process: the base of
``--worker-kind interpreter`` (engines/interpreters.py) and ``--worker-kind thread`` (this file).

Both differ from process workers (engines/supervisor.py) in the same three of the four worker
hooks, written once here:

    exited      the worker's thread ended: its engine returned, or its body raised (logged with the
                traceback; the supervisor replaces it, with the same back-off as a process)
    tell_stop   a byte on the worker's stop pipe: signals reach only the main thread, so the engine
                watches a stop descriptor instead of installing handlers (``Driver.stop_fd``)
    force_stop  a thread cannot be killed: a worker still running ``--drain-timeout`` + 2 s after the
                stop is abandoned, and the process exits (status 1) without waiting for it

and ``launch`` is each kind's own: :class:`ThreadSupervisor` runs the engine in a plain thread of
the main interpreter; the interpreter supervisor runs it in a subinterpreter.

Thread workers (``--worker-kind thread``) are N copies of the engine, each with its own app,
selector or event loop, sharing the process's memory and the listening sockets (each copy holds a
``dup`` of them, as a forked worker holds its inherited copy). On a GIL build they take turns on
one core (a convoy: measured, not an error); on a free-threaded build (3.14t, PEP 703) they run in
parallel: a multi-loop server in one process, as Tokio and Go run one scheduler per core.

Fault injection for tests: ``LAB_WORKER_FAULT=start:K`` makes the first K worker starts raise
before they serve (what a worker whose app fails to build looks like).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import sys
import threading
from typing import Any, Callable

from .config import ServerConfig
from .listeners import Listener
from .supervisor import Supervisor, run_worker

__all__ = ["InProcessSupervisor", "ThreadSupervisor", "Worker"]

log = logging.getLogger("lab.inprocess")


class Worker:
    """One in-process worker, as the supervisor sees it: its number, thread and stop pipe."""

    prefix = "w"

    def __init__(self, number: int, prefix: str) -> None:
        self.number = number
        self.prefix = prefix
        self.stop_r, self.stop_w = os.pipe()
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"{self.prefix}{self.number}"


class InProcessSupervisor(Supervisor):
    """A :class:`engines.supervisor.Supervisor` whose workers are threads of this process.

    Subclasses give ``kind`` and :meth:`body` (what a worker's thread runs). Args: as the
    supervisor's.
    """

    kind = "thread"
    #: the letter before a worker's number in the logs (t1, i2...)
    prefix = "t"

    def __init__(self, engine_class: Any, app: Any, config: ServerConfig, listeners: list[Listener],
                 workers: int) -> None:
        super().__init__(engine_class, app, config, listeners, workers)
        self.numbers = iter(range(1, 1 << 30))
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.abandoned = False
        fault = os.environ.get("LAB_WORKER_FAULT", "")
        self.faults = int(fault.partition(":")[2] or 0) if fault.startswith("start:") else 0

    def body(self, worker: Worker, slot: int, fault: bool) -> Callable[[], str]:
        """What ``worker``'s thread runs for ``slot``: a callable that serves until stopped and
        returns how it ended (``"returned"``), or raises. ``fault``: raise before serving."""
        raise NotImplementedError

    # -- the worker hooks ---------------------------------------------------------------------------
    def launch(self, slot: int) -> Any:
        """Start a worker for ``slot`` in a new thread; returns its :class:`Worker`."""
        worker = Worker(next(self.numbers), self.prefix)
        fault = self.faults > 0
        if fault:
            self.faults -= 1
        run_body = self.body(worker, slot, fault)

        def run() -> None:
            # The stop signals are the main thread's business (the supervisor's handlers).
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            how = "returned"
            try:
                how = run_body()
            except BaseException as exc:  # noqa: BLE001 - the supervisor replaces it
                how = f"raised {type(exc).__name__}: {exc}"
                log.exception("worker %r (%s) failed", worker, self.kind)
            finally:
                for fd in (worker.stop_r, worker.stop_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                self.done.put((worker, how))
                try:
                    self._wake[1].send(b"\0")
                except OSError:
                    pass

        worker.thread = threading.Thread(target=run, name=f"{self.kind}-worker-{worker.number}")
        worker.thread.start()
        return worker

    def exited(self) -> list[tuple[Any, str]]:
        """The workers whose threads have ended since the last call."""
        out = []
        while True:
            try:
                worker, how = self.done.get_nowait()
            except queue.Empty:
                return out
            if worker.thread is not None:
                worker.thread.join()
            out.append((worker, how))

    def tell_stop(self, handle: Any) -> None:
        """A byte on the worker's stop pipe: its engine drains and returns."""
        try:
            os.write(handle.stop_w, b"s")
        except OSError:
            pass

    def force_stop(self, handle: Any) -> None:
        """A thread cannot be killed: leave it; :meth:`serve` then exits the process."""
        self.abandoned = True

    def woken_by_exits(self) -> Any:
        """A worker's thread writes the wake-up channel itself when it ends."""
        return None

    def restore(self, saved: Any) -> None:
        """Nothing to undo."""

    def serve(self) -> None:
        """As :meth:`Supervisor.serve`; when a worker had to be abandoned, exit the process here
        (its thread would otherwise keep the interpreter from finishing)."""
        super().serve()
        if self.abandoned:
            log.warning("exiting with %d worker(s) still running", len(self.children))
            logging.shutdown()
            sys.stdout.flush()
            os._exit(1)


class ThreadSupervisor(InProcessSupervisor):
    """``workers`` copies of ``engine_class``, each in its own thread of this process
    (``--worker-kind thread``): each builds its own app (so its own metrics, caches and host
    table, published on the board as a process worker's are) and serves ``dup``-ed copies of the
    listening sockets. Args: as :class:`engines.supervisor.Supervisor`."""

    kind = "thread"
    prefix = "t"

    def body(self, worker: Worker, slot: int, fault: bool) -> Callable[[], str]:
        """Build the app and the listeners, then :func:`engines.supervisor.run_worker`."""
        from app import create_app

        from .database import database_of

        config, launched_at = self.config, self.started[slot]
        fds = [(lst.sock.fileno(), lst.tls) for lst in self.listeners]
        board_slot = self.board.slot(slot)

        def run() -> str:
            if fault:
                raise RuntimeError("injected fault (LAB_WORKER_FAULT=start:K): this worker fails before serving")
            app = create_app(config.www, config.data_dir, db=database_of(config))
            listeners = [Listener(socket.socket(fileno=os.dup(fd)), tls) for fd, tls in fds]
            run_worker(self.engine_class, app, config, listeners, board_slot, stop_fd=worker.stop_r,
                       launched_at=launched_at, kind="thread")
            return "returned"

        return run
