"""Copies of one engine: ``--workers N`` processes, supervised (the second axis of the lab).

An engine is a concurrency model inside one interpreter (threads, inline blocking, a selectors
loop, asyncio). How many copies of it run is this module's business, and the engines do not know
about it: socketserver's ``ForkingMixIn`` beside ``ThreadingMixIn`` is the picture, and
gunicorn's arbiter, uvicorn's ``--workers`` and granian's ``--workers`` are what people deploy.

Theory of operation
-------------------
The parent (the supervisor) has bound the listeners (``engines/listeners.py``). It makes a
:class:`Board`, a block of shared memory (``memfd`` + ``mmap``) with one slot per worker, and
forks N workers. Each worker builds the engine, hands it its slot (:meth:`Board.slot`) and runs
``engine.serve()``: the engine counts its open connections and in-flight handlers in the slot and
checks ``--max-connections`` against the sum of every slot, so the limits and gauges hold for the
whole server. A thread in each worker publishes the app's metrics to the slot twice a second,
and any worker answering ``GET /_metrics`` merges every slot (app/metrics.py).

The supervisor then waits: a worker that exits is replaced (after a back-off that doubles while
workers keep dying within :data:`EARLY_EXIT_S` of their start, and the log says so); SIGTERM or
SIGINT closes the parent's listeners and is passed on to every worker, each drains its own
connections (engines/lifecycle.py: served, or 503 + Retry-After + ``Connection: close`` at the
drain timeout), and the parent exits when all have, killing any still alive after
``--drain-timeout`` + 2 s.

Signals and fork: the stop signals are blocked across ``fork`` and stay blocked in the worker
until its engine's handlers are in place (``Driver.signals_ready``); a SIGTERM that arrives in
between is delivered then, never lost and never run by the parent's handler in the child.

Accepting: by default the workers share the parent's listening sockets, one accept queue, and
each takes one connection per wake-up (``accept_batch = 1``; asyncio then accepts through a reader
of its own instead of its servers, which take a batch): a burst of new connections is shared out,
and a worker stuck in a CPU-bound handler takes none, so the others serve them. With
``--reuse-port`` the parent only holds the ports (bound, not listening) and each worker binds a
``SO_REUSEPORT`` listener of its own, accepting in batches; the kernel spreads new connections by
a hash of their addresses, evenly, but a stuck worker's queue keeps its share, which waits
(``python -m loadtest.experiments.reuseport`` compares both modes).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import queue
import select
import signal
import socket
import struct
import threading
import time
from typing import Any

from .config import ServerConfig
from .lifecycle import SignalCommands
from .listeners import Listener, bind

__all__ = ["Supervisor", "Board", "BoardSlot", "cpu_count", "EARLY_EXIT_S"]

log = logging.getLogger("lab.supervisor")

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
#: a worker that exits sooner than this after its start counts as a start-up failure (s)
EARLY_EXIT_S = 2.0
#: the longest back-off between restarts of a worker that keeps dying at start-up (s)
MAX_BACKOFF_S = 10.0
#: how often each worker publishes its metrics to the board (s)
PUBLISH_S = 0.5


def cpu_count() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Board:
    """Shared memory for the whole server: per worker slot, its open connections, its in-flight
    handlers and its last published metrics (JSON bytes under a sequence lock).

    Layout (native int32s, then bytes)::

        connections[N]  in_flight[N]  then per slot: seq, pid, published_ms, length, data[CAP]

    ``seq`` is odd while a writer is in the middle of a publication; a reader retries until it
    sees the same even ``seq`` before and after copying. Each slot has one writer at a time.

    Args:
        size: number of worker slots. capacity: bytes of metrics JSON per slot.
    """

    HEADER = struct.Struct("=IiqI")

    def __init__(self, size: int, capacity: int = 256 * 1024) -> None:
        self.size = size
        self.capacity = capacity
        self.stride = self.HEADER.size + capacity
        self._counters = 8 * size
        self.fd = os.memfd_create("concurrency-lab-board", 0)
        os.ftruncate(self.fd, self._counters + size * self.stride)
        self.mem = mmap.mmap(self.fd, self._counters + size * self.stride)
        self.connections = memoryview(self.mem)[:4 * size].cast("i")
        self.in_flight = memoryview(self.mem)[4 * size:8 * size].cast("i")

    @classmethod
    def from_fd(cls, fd: int, size: int, capacity: int = 256 * 1024) -> "Board":
        """The same board, mapped again from its descriptor ``fd`` (an interpreter worker maps the
        board its supervisor made in the same process; the memory is shared, not copied)."""
        board = cls.__new__(cls)
        board.size, board.capacity = size, capacity
        board.stride = cls.HEADER.size + capacity
        board._counters = 8 * size
        board.fd = fd
        board.mem = mmap.mmap(fd, board._counters + size * board.stride)
        board.connections = memoryview(board.mem)[:4 * size].cast("i")
        board.in_flight = memoryview(board.mem)[4 * size:8 * size].cast("i")
        return board

    @classmethod
    def of_process(cls, pid: int, capacity: int = 256 * 1024) -> "Board":
        """The board of the supervisor ``pid`` on this machine, mapped from
        ``/proc/PID/fd`` (for tests and tools that watch a server from outside; read it only).

        Raises:
            LookupError: ``pid`` holds no board. OSError: it cannot be read.
        """
        fd_dir = f"/proc/{pid}/fd"
        for name in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith("/memfd:concurrency-lab-board"):
                board = cls.__new__(cls)
                board.capacity = capacity
                board.stride = cls.HEADER.size + capacity
                with open(os.path.join(fd_dir, name), "rb") as f:
                    total = os.fstat(f.fileno()).st_size
                    board.size = total // (8 + board.stride)
                    board._counters = 8 * board.size
                    board.fd = -1
                    board.mem = mmap.mmap(f.fileno(), total, prot=mmap.PROT_READ)
                board.connections = memoryview(board.mem)[:4 * board.size].cast("i")
                board.in_flight = memoryview(board.mem)[4 * board.size:8 * board.size].cast("i")
                return board
        raise LookupError(f"process {pid} holds no concurrency-lab board")

    def slot(self, index: int) -> "BoardSlot":
        """The view one worker writes through (and reads the whole server by)."""
        return BoardSlot(self, index)

    def reset(self, index: int) -> None:
        """A worker in ``index`` died: its connections and handlers died with it."""
        self.connections[index] = 0
        self.in_flight[index] = 0
        base = self._counters + index * self.stride
        self.mem[base:base + self.HEADER.size] = self.HEADER.pack(0, 0, 0, 0)

    def publish(self, index: int, data: bytes) -> bool:
        """Write ``data`` (JSON bytes) as slot ``index``'s metrics; False when it does not fit."""
        if len(data) > self.capacity:
            return False
        base = self._counters + index * self.stride
        seq = self.HEADER.unpack_from(self.mem, base)[0]
        self.HEADER.pack_into(self.mem, base, seq + 1, 0, 0, 0)
        self.mem[base + self.HEADER.size:base + self.HEADER.size + len(data)] = data
        self.HEADER.pack_into(self.mem, base, seq + 2, os.getpid(), int(time.time() * 1000), len(data))
        return True

    def read(self, index: int) -> tuple[int, float, bytes] | None:
        """Slot ``index``'s last publication: ``(pid, published at (Unix s), JSON bytes)``, or
        ``None`` when it has published nothing (or kept changing while read)."""
        base = self._counters + index * self.stride
        for _ in range(100):
            seq, pid, ms, length = self.HEADER.unpack_from(self.mem, base)
            if seq & 1:
                continue
            data = bytes(self.mem[base + self.HEADER.size:base + self.HEADER.size + length])
            if self.HEADER.unpack_from(self.mem, base)[0] == seq:
                return (pid, ms / 1000, data) if pid else None
        return None


class BoardSlot:
    """One worker's place on the :class:`Board`: what an engine and the app's metrics are given.

    Engines call :meth:`set_connections` and :meth:`connections`; ``app.metrics.Metrics`` calls
    :meth:`in_flight_view`, :meth:`publish` and :meth:`others`."""

    def __init__(self, board: Board, index: int) -> None:
        self.board = board
        self.index = index

    def set_connections(self, count: int) -> None:
        """This worker has ``count`` connections open."""
        self.board.connections[self.index] = count

    def connections(self) -> int:
        """Open connections of the whole server."""
        return sum(self.board.connections)

    def in_flight_view(self) -> tuple[Any, int]:
        """``(int32 view with one element per worker, this worker's index)``."""
        return self.board.in_flight, self.index

    def publish(self, data: bytes) -> bool:
        """Publish this worker's metrics (JSON bytes)."""
        return self.board.publish(self.index, data)

    def others(self) -> list[tuple[int, int, float, bytes]]:
        """Every other worker's last publication: ``(index, pid, published at, JSON bytes)``."""
        out = []
        for i in range(self.board.size):
            if i != self.index and (got := self.board.read(i)) is not None:
                out.append((i, *got))
        return out

    def connections_of(self, index: int) -> int:
        """Open connections of worker ``index``."""
        return self.board.connections[index]

    def in_flight_of(self, index: int) -> int:
        """Handlers in flight in worker ``index``."""
        return self.board.in_flight[index]


class Supervisor:
    """Run ``workers`` copies of ``engine_class``, replace any that exit, drain them all on
    SIGINT/SIGTERM. This class runs each copy in a forked process (``--worker-kind process``);
    :class:`engines.interpreters.InterpreterSupervisor` overrides the four worker hooks
    (``launch``, ``exited``, ``tell_stop``, ``force_stop``) to run them in subinterpreters.

    Args:
        engine_class: an :class:`engines.Engine` class. app: the application (inherited by fork).
        config: the server's options. listeners: bound sockets. workers: how many copies (>= 1).
    """

    name = "supervisor"
    #: what one copy runs in, for the start-up line and the logs
    kind = "process"

    def __init__(self, engine_class: Any, app: Any, config: ServerConfig, listeners: list[Listener],
                 workers: int) -> None:
        self.engine_class = engine_class
        self.app = app
        self.config = config
        self.listeners = listeners
        self.size = workers
        self.board = Board(workers)
        self.children: dict[Any, int] = {}  # worker handle (a pid here) -> slot
        self.started: dict[int, float] = {}  # slot -> when its worker started (monotonic s)
        self.failures: dict[int, int] = {}  # slot -> start-up failures in a row
        self.pending: dict[int, float] = {}  # slot -> when to start its replacement
        self.stopping = False

    def describe(self) -> str:
        """A few words for the start-up line."""
        each = self.engine_class.name
        if getattr(self.engine_class, "threaded", False):
            each += f" with {self.config.threads or 32} threads"
        plural = "" if self.size == 1 else ("es" if self.kind == "process" else "s")
        return f"{self.size} worker {self.kind}{plural}, {each} each"

    # -- the worker hooks: processes --------------------------------------------------------------
    def launch(self, slot: int) -> Any:
        """Start a worker in ``slot``; returns its handle (here: its pid)."""
        # A SIGTERM between the fork and the worker's own handlers would run the parent's handler
        # (inherited) in the child, and the worker would never drain: block the stop signals
        # across the fork; the engine unblocks them once its handlers are set (signals_ready).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return pid
        code = 0
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for end in self._wake:
                end.close()
            code = run_worker(self.engine_class, self.app, self.config, self.listeners, self.board.slot(slot),
                              launched_at=self.started[slot])
        except BaseException:
            log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def exited(self) -> list[tuple[Any, str]]:
        """The workers that have exited since the last call: ``[(handle, how)]`` (non-blocking)."""
        out = []
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                out.append((pid, "gone"))
                continue
            if done:
                out.append((pid, f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                            else f"status {os.WEXITSTATUS(status)}"))
        return out

    def tell_stop(self, handle: Any) -> None:
        """Ask worker ``handle`` to drain and exit (SIGTERM)."""
        try:
            os.kill(handle, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def force_stop(self, handle: Any) -> None:
        """Worker ``handle`` did not drain in time: end it (SIGKILL)."""
        try:
            os.kill(handle, signal.SIGKILL)
            os.waitpid(handle, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def woken_by_exits(self) -> Any:
        """Make a worker's exit wake the supervisor's ``select`` (SIGCHLD); returns what
        :meth:`restore` undoes."""
        return signal.signal(signal.SIGCHLD, lambda *_: None)

    def restore(self, saved: Any) -> None:
        """Undo :meth:`woken_by_exits`."""
        signal.signal(signal.SIGCHLD, saved)

    # -- the supervision, whatever runs the workers -------------------------------------------------
    def serve(self) -> None:
        """Start the workers, replace any that exit, and on SIGINT/SIGTERM drain them all."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._wake = (wake_r, wake_w)
        commands: queue.SimpleQueue = queue.SimpleQueue()
        saved = self.woken_by_exits()
        try:
            with SignalCommands(commands, wake_w):
                for slot in range(self.size):
                    self._start(slot)
                while (self.children or self.pending) and not self.stopping:
                    self._reap()
                    self._start_pending()
                    timeout = min([1.0, *(max(0.0, due - time.monotonic()) for due in self.pending.values())])
                    self._sleep(timeout)
                    if not commands.empty():
                        self._stop_workers()
                self._wait_for_workers()
        finally:
            self.restore(saved)
            wake_r.close()
            wake_w.close()
            for listener in self.listeners:
                listener.sock.close()

    def _sleep(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for a signal or a worker's exit (both write the wake-up channel)."""
        select.select([self._wake[0]], [], [], timeout)
        try:
            while self._wake[0].recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _start(self, slot: int) -> None:
        self.board.reset(slot)
        self.started[slot] = time.monotonic()
        self.children[self.launch(slot)] = slot

    def _reap(self) -> None:
        """Collect exited workers; schedule a replacement for each unless stopping."""
        for handle, how in self.exited():
            slot = self.children.pop(handle, None)
            if slot is None or self.stopping:
                continue
            self.board.reset(slot)
            lived = time.monotonic() - self.started.get(slot, 0.0)
            if lived < EARLY_EXIT_S:
                self.failures[slot] = self.failures.get(slot, 0) + 1
                delay = min(MAX_BACKOFF_S, 0.1 * 2 ** (self.failures[slot] - 1))
                log.warning("worker %s exited (%s) %.1f s after its start, %d time(s) in a row; "
                            "backing off: next start in %.1f s", handle, how, lived, self.failures[slot], delay)
            else:
                self.failures[slot] = 0
                delay = 0.0
                log.warning("worker %s exited (%s); starting a new one", handle, how)
            self.pending[slot] = time.monotonic() + delay

    def _start_pending(self) -> None:
        now = time.monotonic()
        for slot, due in list(self.pending.items()):
            if due <= now:
                del self.pending[slot]
                self._start(slot)

    def _stop_workers(self) -> None:
        """Pass the stop on to every worker (each drains its own connections) and close this
        process's copies of the listeners, so that the kernel refuses new connections once the
        workers have closed theirs."""
        self.stopping = True
        self.pending.clear()
        for listener in self.listeners:
            listener.sock.close()
        for handle in list(self.children):
            self.tell_stop(handle)

    def _wait_for_workers(self) -> None:
        """Wait for the draining workers; force any still running ``--drain-timeout`` + 2 s later."""
        deadline = time.monotonic() + self.config.drain_timeout + 2
        while self.children and time.monotonic() < deadline:
            self._sleep(0.05)
            for handle, _ in self.exited():
                self.children.pop(handle, None)
        for handle in list(self.children):
            log.warning("worker %s did not drain in time; stopping it", handle)
            self.force_stop(handle)


def run_worker(engine_class: Any, app: Any, config: ServerConfig, listeners: list[Listener],
               slot: BoardSlot, stop_fd: int | None = None, launched_at: float | None = None,
               kind: str = "process") -> int:
    """Inside a worker (a process or an interpreter): attach the slot to the app's metrics and to
    the engine, start the metrics publisher, serve until stopped (SIGTERM, or ``stop_fd`` turning
    readable when given: ``Driver.stop_fd``). ``launched_at``: when the supervisor started this
    worker (``time.monotonic()`` s, one clock for the machine): the worker's start-up time, from
    there to serving, is logged and published (``ready_ms``). Returns the exit status (0)."""
    if config.reuse_port:  # this worker's own listening sockets in the group
        own = [Listener(bind(*lst.address, config.backlog, reuse_port=True), lst.tls) for lst in listeners]
        for lst in listeners:
            lst.sock.close()
        listeners = own
    metrics = getattr(app, "metrics", None)
    if metrics is not None:
        metrics.share(slot)
    engine = engine_class(app, config, listeners)
    engine.board = slot
    engine.stop_fd = stop_fd
    if not config.reuse_port:
        # One accept queue for every worker: each takes one connection per wake-up, so a burst
        # is shared out, and a worker stuck in a handler leaves new connections to the others.
        engine.accept_batch = 1
    ready_ms = round((time.monotonic() - launched_at) * 1000, 1) if launched_at is not None else None
    log.info("worker %d (%s) ready %s ms after its start", slot.index, kind, ready_ms)
    stop = threading.Event()
    publisher = None
    if metrics is not None:
        metrics.identity = {"worker": slot.index, "worker_kind": kind, "ready_ms": ready_ms}
        slot.publish(json.dumps(metrics.publication()).encode())  # serving from now on: on the board at once
        def publish() -> None:
            while not stop.wait(PUBLISH_S):
                try:
                    slot.publish(json.dumps(metrics.publication()).encode())
                except Exception:  # noqa: BLE001 - metrics must never take a worker down
                    log.debug("publishing metrics failed", exc_info=True)
        # not a daemon (subinterpreters allow none): stopped and joined when the engine returns
        publisher = threading.Thread(target=publish, name="metrics-publisher")
        publisher.start()
    try:
        engine.serve()
    finally:
        stop.set()
        if publisher is not None:
            publisher.join()
    return 0
