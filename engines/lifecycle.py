"""What every engine does the same way, written once: listen, accept, signals, the tick, drain,
and stepping a request's task through its effects.

Theory of operation
-------------------
An engine is this lifecycle plus a concurrency model. The lifecycle owns::

    listeners        bound sockets (engines/listeners.py), polled for new connections
    wake-up channel  a socketpair: signal.set_wakeup_fd and other threads make select() return
    commands         a thread-safe queue the loop drains: ("stop", signum) from the signal
                     handlers (which do no socket I/O), ("watch" | "close", conn) from workers
    accept           up to ``accept_batch`` per wake-up; past ``--max-connections`` (counted by
                     ``connection_count()``: the whole server's under the supervisor) a 503 with
                     Retry-After and ``Connection: close`` from protocol/, then close
    tick             once a second ``check_timeouts(now)``
    drain            on the first stop: accept what the kernel already queued, close the
                     listeners, ``shutdown_connections()``; the loop ends when no connection is
                     left or ``--drain-timeout`` has passed; then a connection whose request was
                     never read is answered 503 (Retry-After), never reset

The model supplies hooks, in this order in every engine file::

    open(sock, peer, listener)          a connection was accepted: start its session
    on_event(conn, mask)                the selector saw it readable / writable
    on_sleep / on_park / on_flush / on_sendfile (conn, task, ...)
                                        what a handler's effect means in this model (block a
                                        thread or a process, a timer heap, call_later); True:
                                        keep stepping the task, False: it was handed off
    flush(conn)                         write what the session has to send
    close(conn)                         forget the connection, cancel its tasks
    check_timeouts(now)                 the once-a-second check
    shutdown_connections()              the drain has begun

:class:`Driver` is the one loop that steps tasks and dispatches their effects to those hooks; the
asyncio engine uses it on asyncio's loop, the other three use all of :class:`Lifecycle`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import selectors
import signal
import socket
import time
from typing import Any

from app.db import DatabaseError, Query
from app.effects import FLUSH, PARK, Sleep
from protocol.errors import ErrorCode
from protocol.h1_parse import error_response_bytes
from protocol.h2_frames import PREFACE as H2_PREFACE
from protocol.h2_frames import goaway_frame, settings_frame

from .config import ServerConfig
from .listeners import Listener, connection_info, tune_socket
from .session import Session
from .tasks import SendFile, Task

__all__ = ["Lifecycle", "Driver", "Connection", "SignalCommands", "BUSY", "BUSY_H2", "busy_answer", "OVERLOADED", "DRAINED", "TICK_S", "RECV_SIZE", "refuse",
           "has_unread_bytes", "request_waiting"]

log = logging.getLogger("lab.lifecycle")

READ = selectors.EVENT_READ
#: the selector key data of the stop descriptor
STOP = "stop"
WRITE = selectors.EVENT_WRITE
TICK_S = 1.0
#: bytes asked of one read. Under glibc malloc's mmap threshold (128 KiB): a 256 KiB ``recv``
#: (asyncio's own size) allocates its buffer with mmap and frees it with munmap on every call,
#: about 20 µs a read on the reference VM against 3 µs for 64 KiB (a socketpair, 50-byte reads).
RECV_SIZE = 64 * 1024
#: The answer to a connection accepted past ``--max-connections`` (then closed).
BUSY = error_response_bytes(503, "too many connections", retry_after_s=1)
#: The answer to a request no worker can take now (a full job queue).
OVERLOADED = error_response_bytes(503, "every worker is busy", retry_after_s=1)
#: The answer to a request that arrived while draining and could not be served in time.
DRAINED = error_response_bytes(503, "the server is stopping", retry_after_s=1)


#: The same answer to an HTTP/2 client (RFC 9113 §3.4, §6.8): the server's connection preface (an
#: empty SETTINGS) and GOAWAY with last stream 0 and REFUSED_STREAM: no stream was processed, every
#: request may be retried on another connection.
BUSY_H2 = settings_frame({}) + goaway_frame(0, ErrorCode.REFUSED_STREAM, b"too many connections")


def peek(sock: Any, n: int) -> bytes:
    """Up to ``n`` bytes the peer has sent, left unread (``MSG_PEEK``, without blocking). ``sock``
    may be asyncio's ``TransportSocket`` (peeked on a duplicate descriptor).

    Raises:
        BlockingIOError: nothing to read yet. OSError, ValueError: as ``socket.recv`` (TLS sockets
            refuse the flags)."""
    if not hasattr(sock, "recv") and hasattr(sock, "dup"):
        with sock.dup() as real:
            return real.recv(n, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    return sock.recv(n, socket.MSG_PEEK | socket.MSG_DONTWAIT)


def busy_answer(sock: Any, tls_obj: Any = None) -> bytes:
    """The answer to a connection past ``--max-connections``, in the client's protocol: HTTP/2
    (ALPN ``h2`` on ``tls_obj``, or the client preface already waiting in the plain socket,
    peeked without reading) gets :data:`BUSY_H2`, anything else the HTTP/1.1 503 :data:`BUSY`.
    ``sock`` may be asyncio's ``TransportSocket``."""
    if tls_obj is not None:
        return BUSY_H2 if tls_obj.selected_alpn_protocol() == "h2" else BUSY
    try:
        first = peek(sock, len(H2_PREFACE))
    except OSError:
        return BUSY
    return BUSY_H2 if first and H2_PREFACE.startswith(first) else BUSY


def refuse(sock: socket.socket, answer: bytes = BUSY) -> None:
    """Write ``answer`` without blocking (a fresh socket's buffer takes it), then close."""
    try:
        sock.setblocking(False)
        sock.send(answer)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def has_unread_bytes(sock: Any) -> bool:
    """Whether the peer has sent bytes not yet read (a request waiting in the socket buffer).
    ``sock`` may be asyncio's ``TransportSocket`` (peeked on a duplicate descriptor)."""
    if sock is None:
        return False
    try:
        return bool(peek(sock, 1))
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):  # TLS sockets refuse MSG_PEEK flags; closed sockets
        return bool(getattr(sock, "pending", lambda: 0)())


class Connection:
    """What every engine keeps of an accepted connection: its socket, listener, id and session,
    and whether the peer sent EOF or the engine closed it. Engines add their own slots."""

    __slots__ = ("sock", "listener", "id", "session", "eof", "closed")

    def __init__(self, sock: socket.socket, listener: Listener, cid: int) -> None:
        self.sock = sock
        self.listener = listener
        self.id = cid
        self.session: Session | None = None
        self.eof = False
        self.closed = False


def request_waiting(session: Any, sock: Any) -> bool:
    """Whether an HTTP/1.x session with nothing in flight has its next request already waiting,
    unread, in the socket: the drain serves it (or, when the drain ends, answers it 503)
    rather than closing the connection under it."""
    return session.in_order and not session.busy and has_unread_bytes(sock)


class SignalCommands:
    """Context manager: while active, SIGINT and SIGTERM put ``("stop", signum)`` on ``commands``
    and Python writes the signal number to ``wake_w`` (``signal.set_wakeup_fd``), so that a loop
    blocked in ``select()`` wakes and handles the stop itself. The handler does no socket I/O."""

    def __init__(self, commands: queue.SimpleQueue, wake_w: socket.socket) -> None:
        self.commands = commands
        self.wake_w = wake_w
        self._old: dict[int, Any] = {}
        self._old_fd = -1

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.commands.put(("stop", signum))

    def __enter__(self) -> "SignalCommands":
        self._old_fd = signal.set_wakeup_fd(self.wake_w.fileno())
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        # the handlers are in place: let through a stop signal held since start-up (server.main)
        # or across a fork (the supervisor's launch)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(self._old_fd)


class Driver:
    """The one effect driver: step tasks, dispatch each effect to the model's hook.

    ``run(conn, tasks)`` steps every task until it ends or a hook hands it off (returns False),
    then the tasks the session made runnable meanwhile (pipelined requests, woken waiters), then
    ``ran(conn)`` (by default: flush). A task whose connection closed under it is cancelled, so
    that its handler stops producing output nobody will read.
    """

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.connections: set[Any] = set()
        self.stopping = False  # true once the drain has begun

    #: what guards a session stepped by several threads (threadpool: a Lock); None: one thread
    session_lock: Any = staticmethod(lambda: None)
    #: this worker's slot on the whole server's board (engines/supervisor.py) when it is one of
    #: several copies; ``None`` when the engine is the whole server
    board: Any = None
    #: the stop descriptor: when set, the engine installs no signal handlers and drains when this
    #: file descriptor turns readable (a byte or end of file). Set by a worker runner whose engine
    #: gets no signals: an interpreter worker (signals reach only the main interpreter,
    #: engines/interpreters.py). ``None``: SIGINT/SIGTERM stop the engine
    stop_fd: int | None = None

    def connection_count(self) -> int:
        """Open connections counted against ``--max-connections``: the whole server's (every
        worker's, from the board) when this engine is one of several copies."""
        return len(self.connections) if self.board is None else self.board.connections()

    def connections_changed(self) -> None:
        """A connection was added or closed: publish this copy's count on the board."""
        if self.board is not None:
            self.board.set_connections(len(self.connections))

    def send_stalled(self, last_progress: float, now: float) -> bool:
        """The send-timeout rule, for every engine that writes without blocking: a connection with
        bytes waiting to be written that made no write progress since ``last_progress`` for
        ``--send-timeout`` s (``time.monotonic()``) is cut off. (The blocking engines get the
        same rule from the socket's timeout on ``sendall``.)"""
        return now - last_progress > self.config.send_timeout

    def signals_ready(self) -> None:
        """The engine's SIGINT/SIGTERM handlers are in place: let the stop signals through (the
        supervisor blocks them across ``fork``; a no-op when they were not blocked)."""
        if self.stop_fd is not None:
            return
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

    def guard(self, hook: Any, conn: Any, *args: Any) -> None:
        """Run ``hook(conn, *args)``; an unexpected exception closes only ``conn`` and is logged
        once: one connection's bug never ends the server."""
        try:
            hook(conn, *args)
        except Exception:
            self.failed(conn)

    def failed(self, conn: Any) -> None:
        """An unexpected exception in ``conn``'s handling (being handled): log it, end ``conn``."""
        raise NotImplementedError

    def run(self, conn: Any, tasks: list[Task]) -> None:
        """Step ``tasks`` of ``conn`` (see the class docstring)."""
        session = conn.session
        while tasks:
            for task in tasks:
                while True:
                    effect = task.step()
                    if effect is None:
                        break
                    if effect.__class__ is Sleep:
                        go = self.on_sleep(conn, task, effect.seconds)
                    elif effect is PARK:
                        go = self.on_park(conn, task)
                    elif effect is FLUSH:
                        go = self.on_flush(conn, task)
                    elif effect.__class__ is SendFile:
                        go = self.on_sendfile(conn, task, effect)
                    elif effect.__class__ is Query:
                        go = self.on_query(conn, task, effect)
                    else:  # pragma: no cover - the session yields only these
                        raise TypeError(f"unknown effect {effect!r}")
                    if not go:
                        break
                    if conn.closed:
                        task.cancel()
            tasks = session.runnable()
        self.ran(conn)

    def begin_session(self, conn: Any, cid: int, peer: Any, local: Any, tls: Any, sendfile: bool) -> None:
        """Give ``conn`` its :class:`Session` (the protocol is sniffed from the first bytes, or
        chosen by ALPN on ``tls``, the SSL socket or object) and write the server's first bytes
        (HTTP/2 SETTINGS after ALPN h2). ``peer``/``local``: socket addresses; ``sendfile``:
        whether static files may go out with the zero-copy effect."""
        info = connection_info(cid, self.name, peer, local, tls)
        conn.session = Session(self.app, self.config, info, lock=self.session_lock())
        conn.session.sendfile = sendfile
        self.flush(conn)

    def feed(self, conn: Any, data: bytes) -> list[Task]:
        """Give bytes read from ``conn`` (``b""``: EOF) to its session; the tasks they complete.
        A request read during the drain is answered with ``Connection: close``."""
        session = conn.session
        if not data:
            conn.eof = True
        tasks = session.receive(data)
        if self.stopping and data and session.in_order:
            session.shutdown()
        return tasks

    def ran(self, conn: Any) -> None:
        """After ``run``: write what the tasks produced."""
        self.flush(conn)

    def on_sleep(self, conn: Any, task: Task, seconds: float) -> bool:
        """The handler awaited ``app.wait(seconds)``."""
        raise NotImplementedError

    def on_query(self, conn: Any, task: Task, query: Query) -> bool:
        """The handler awaited a query (app/db.py): run it here, inline, on the database that
        asked (the embedded SQLite: a local file, nothing for a loop to overlap), and resume the
        task with its result, or with the :class:`app.db.DatabaseError` thrown at its await."""
        try:
            task.reply = query.db.run(query)
        except DatabaseError as exc:
            task.thrown = exc
        return True

    def on_park(self, conn: Any, task: Task) -> bool:
        """The task waits for the peer; False: the session hands it back from a later
        ``receive()`` (True: it was woken already)."""
        return conn.session.park(task)

    def on_flush(self, conn: Any, task: Task) -> bool:
        """The task produced a lot of output: write it before asking for more."""
        raise NotImplementedError

    def on_sendfile(self, conn: Any, task: Task, effect: SendFile) -> bool:
        """Write pending output, then ``effect``'s file range, then resume the task."""
        raise NotImplementedError

    def flush(self, conn: Any) -> Any:
        """Write what ``conn``'s session has to send."""
        raise NotImplementedError

    def shutdown_connections(self) -> None:
        """Drain: every session shuts down (Connection: close, GOAWAY) unless its next HTTP/1.x
        request is already in the socket buffer: that one is read and served first."""
        for conn in list(self.connections):
            if conn.session is None:
                self.close(conn)
            elif not request_waiting(conn.session, conn.sock):
                conn.session.shutdown()
                self.flush(conn)


class Lifecycle(Driver):
    """A ``selectors`` loop with the lifecycle of the module docstring; the model's hooks are
    left to subclasses (selectors, threadpool and processpool workers).

    Args:
        app: the application. config: limits and timeouts. listeners: bound listening sockets.
    """

    name = "lifecycle"
    #: connections accepted per wake-up of a listener
    accept_batch = 64

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        self.selector = selectors.DefaultSelector()
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.ids = itertools.count(1)
        self.timers: list[tuple[float, int, Any, tuple]] = []
        self.timer_seq = itertools.count()
        self.drain_deadline = 0.0
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.log = logging.getLogger(f"lab.{self.name}")

    def describe(self) -> str:
        """A few words for the start-up line."""
        return self.name

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM (or the stop descriptor), then drain in-flight requests for
        ``drain_timeout`` s."""
        if self.stop_fd is not None:
            self.selector.register(self.stop_fd, READ, STOP)
            self.loop()
            return
        with SignalCommands(self.commands, self.wake_w):
            self.signals_ready()
            self.loop()

    def stop_requested(self) -> None:
        """The stop descriptor turned readable: consume it and begin the drain (once)."""
        try:
            self.selector.unregister(self.stop_fd)
            os.read(self.stop_fd, 64)
        except (KeyError, ValueError, OSError):
            pass
        if not self.stopping:
            self.begin_stop(0)

    def loop(self) -> None:
        """The loop: select, accept, hand events to ``on_event``, commands, timers, the tick."""
        self.selector.register(self.wake_r, READ, None)
        for listener in self.listeners:
            listener.sock.setblocking(False)
            self.selector.register(listener.sock, READ, listener)
        self.start()
        next_tick = time.monotonic() + TICK_S
        try:
            while not (self.stopping and (not self.connections or time.monotonic() > self.drain_deadline)):
                now = time.monotonic()
                timeout = min(next_tick, self.next_timer()) - now
                for key, mask in self.selector.select(max(0.0, timeout)):
                    data = key.data
                    if data is None:
                        self.drain_wakeups()
                    elif data.__class__ is Listener:
                        self.accept(data)
                    elif data is STOP:
                        self.stop_requested()
                    else:  # self.guard(self.on_event, ...), inlined: this is the hot path
                        try:
                            self.on_event(data, mask)
                        except Exception:
                            self.failed(data)
                self.run_commands()
                now = time.monotonic()
                self.run_timers(now)
                if now >= next_tick:
                    next_tick = now + TICK_S
                    self.check_timeouts(now)
        finally:
            for conn in list(self.connections):
                self.close(conn, DRAINED if self.stopping else None)
            self.close_listeners()
            self.stop()
            self.selector.close()
            self.wake_r.close()
            self.wake_w.close()

    def failed(self, conn: Any) -> None:
        """An unexpected exception in ``conn``'s handling (being handled): log it once, close
        ``conn``, carry on."""
        self.log.exception("connection %s failed; closing it", getattr(conn, "id", "?"))
        try:
            self.close(conn)
        except Exception:  # noqa: BLE001 - already logged; the loop must go on
            log.debug("closing a failed connection failed", exc_info=True)

    def drain_wakeups(self) -> None:
        """Empty the wake-up channel (signal numbers, workers' nudges)."""
        try:
            while self.wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def post(self, command: str, conn: Any) -> None:
        """From any thread: ask the loop to run ``command`` on ``conn`` (it owns the selector)."""
        self.commands.put((command, conn))
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def run_commands(self) -> None:
        """Handle the queued commands: ``stop`` here, the rest in ``on_command``."""
        while True:
            try:
                command, arg = self.commands.get_nowait()
            except queue.Empty:
                return
            if command == "stop":
                if not self.stopping:
                    self.begin_stop(arg)
            else:
                self.on_command(command, arg)

    def on_command(self, command: str, conn: Any) -> None:
        """A command posted by a worker (``watch``, ``close``)."""

    def accept(self, listener: Listener, batch: int | None = None) -> None:
        """Accept up to ``batch`` (default ``accept_batch``) connections; past the limit answer
        in the client's protocol (:func:`busy_answer`: the HTTP/1.1 503, or an HTTP/2 client's
        GOAWAY), then close. On a TLS listener the refused connection is closed without a word:
        an answer would need the handshake that the limit is there to spare."""
        for _ in range(batch or self.accept_batch):
            try:
                sock, peer = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            tune_socket(sock)
            if self.connection_count() >= self.config.max_connections:
                refuse(sock, b"" if listener.tls is not None else busy_answer(sock))
                continue
            self.open(sock, peer, listener)

    def start_session(self, conn: Any, peer: Any = None) -> None:
        """``conn``'s :class:`Session` on its socket; sendfile only on plain TCP."""
        sock = conn.sock
        tls = conn.listener.tls is not None
        if peer is None:
            try:
                peer = sock.getpeername()
            except OSError:
                peer = None
        self.begin_session(conn, conn.id, peer, sock.getsockname(), sock if tls else None, not tls)

    def begin_stop(self, signum: int) -> None:
        """Start the drain: take what the kernel already accepted, close the listeners, tell every
        connection (``shutdown_connections``)."""
        self.log.info("%s: draining %d connections", f"signal {signum}" if signum else "stop requested",
                      len(self.connections))
        self.stopping = True
        self.drain_deadline = time.monotonic() + self.config.drain_timeout
        for listener in self.listeners:  # the whole backlog: served (or 503), never reset
            self.accept(listener, self.config.backlog + 1)
        self.close_listeners()
        self.shutdown_connections()

    def close_listeners(self) -> None:
        """Stop accepting: unregister and close every listener (once)."""
        for listener in self.listeners:
            try:
                self.selector.unregister(listener.sock)
            except (KeyError, ValueError):
                pass
            listener.sock.close()

    # -- defaults for the model's hooks --------------------------------------------------------

    def start(self) -> None:
        """The loop is about to run (start worker threads)."""

    def stop(self) -> None:
        """The loop has ended (tell worker threads to exit)."""

    def forget(self, conn: Any, answer: bytes | None, waiting: list[Task]) -> None:
        """The end of every ``close``: drop ``conn``, answer a request it never read with
        ``answer`` (when given), close the socket, cancel its tasks and ``waiting``."""
        conn.closed = True
        self.connections.discard(conn)
        self.connections_changed()
        if answer is not None and conn.session is not None and request_waiting(conn.session, conn.sock):
            refuse(conn.sock, answer)
        try:
            conn.sock.close()
        except OSError:
            pass
        if conn.session is not None:
            for task in conn.session.connection_lost() + waiting:
                task.step()

    def call_later(self, seconds: float, hook: Any, conn: Any, *args: Any) -> None:
        """Run ``guard(hook, conn, *args)`` from the loop in ``seconds`` s (a timer heap)."""
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.timer_seq), hook, (conn, *args)))

    def next_timer(self) -> float:
        """When the earliest timer is due (monotonic s); ``inf`` without timers."""
        return self.timers[0][0] if self.timers else float("inf")

    def run_timers(self, now: float) -> None:
        """Run every timer that is due."""
        while self.timers and self.timers[0][0] <= now:
            _, _, hook, args = heapq.heappop(self.timers)
            self.guard(hook, *args)

    def open(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        """A connection was accepted."""
        raise NotImplementedError

    def on_event(self, conn: Any, mask: int) -> None:
        """The selector saw ``conn`` ready (``mask``: READ and/or WRITE)."""
        raise NotImplementedError

    def close(self, conn: Any, answer: bytes | None = None) -> None:
        """Forget ``conn``; with ``answer`` (the drain ended), write it first when the peer sent
        a request that was never read."""
        raise NotImplementedError

    def check_timeouts(self, now: float) -> None:
        """The once-a-second check of every connection's timeouts."""
