"""Blocking I/O on a connection, shared by the threadpool engine and each processpool worker.

The model (gunicorn's gthread worker): the loop of :class:`engines.lifecycle.Lifecycle` polls the
listeners and every idle connection; a connection with bytes to read is handed to a job
(``dispatch``), which reads, feeds the session, runs the handlers and writes the answer with
blocking ``sendall``. A handler that awaits ``app.wait(s)`` blocks the job's thread in
``Task.sleep``. Where a job runs is the one thing the two engines choose: on a worker thread
(threadpool.py) or inline in the worker process (processpool.py) — socketserver's
``ThreadingMixIn`` against ``ForkingMixIn``.
"""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import threading
import time
from typing import Any, Callable

from .lifecycle import OVERLOADED, READ, RECV_SIZE, Lifecycle, has_unread_bytes, refuse, request_waiting
from .lifecycle import Connection as BaseConnection
from .listeners import Listener
from .tasks import NO_LOCK, SendFile, Task

__all__ = ["BlockingEngine", "Connection"]

log = logging.getLogger("lab.blocking")



class Connection(BaseConnection):
    """One accepted socket (blocking, with a send timeout), its session and its HTTP/2 share."""

    __slots__ = ("write_lock", "idle_since", "streams_running", "streams_waiting", "tick_missed")

    def __init__(self, sock: socket.socket, listener: Listener, cid: int, write_lock: Any) -> None:
        super().__init__(sock, listener, cid)
        self.write_lock = write_lock
        self.idle_since = time.monotonic()
        self.streams_running = 0  # HTTP/2 stream jobs of this connection on workers now
        self.streams_waiting: collections.deque[Task] = collections.deque()  # beyond its share
        self.tick_missed = False  # a once-a-second check came while a job held it


class BlockingEngine(Lifecycle):
    """The lifecycle's loop plus blocking jobs; subclasses say where a job runs (``dispatch``)
    and what guards a session shared between threads (``session_lock``)."""

    write_lock: Callable[[], Any] = staticmethod(lambda: NO_LOCK)
    #: workers one connection's HTTP/2 streams may hold at once (threadpool sets its share)
    streams_per_connection: float = float("inf")

    def __init__(self, app: Any, config: Any, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        self.watched: set[Connection] = set()
        self.share_lock = threading.Lock()

    def dispatch(self, job: Callable[..., None], conn: Connection, *args: Any) -> bool:
        """Run ``job(conn, *args)`` somewhere; False when there is no room for it."""
        raise NotImplementedError

    # -- the model's hooks, in the order of engines/lifecycle.py ------------------------------

    def open(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        """Accepted: a blocking socket with the send timeout, watched for its first bytes (TLS:
        the handshake is a job)."""
        sock.settimeout(self.config.send_timeout)
        conn = Connection(sock, listener, next(self.ids), self.write_lock())
        self.connections.add(conn)
        self.connections_changed()
        if listener.tls is None:
            self.start_session(conn, peer)
            self.watch(conn)
        elif not self.dispatch(self.handshake, conn, peer):
            self.close(conn)

    def on_event(self, conn: Connection, mask: int) -> None:
        """Readable: stop watching it and hand it to a job; when there is no room, 503."""
        self.unwatch(conn)
        if not self.dispatch(self.read, conn):
            conn.sock.settimeout(0.5)
            refuse(conn.sock, OVERLOADED)
            self.close(conn)

    def handshake(self, conn: Connection, peer: Any) -> None:
        """Job: blocking TLS handshake (bounded by the head timeout), then watch the connection."""
        try:
            conn.sock.settimeout(self.config.header_timeout)
            conn.sock = conn.listener.tls.wrap_socket(conn.sock, server_side=True)
            conn.sock.settimeout(self.config.send_timeout)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self.post("close", conn)
            return
        self.start_session(conn, peer)
        self.flush(conn)
        self.post("watch", conn)

    def read(self, conn: Connection) -> None:
        """Job: read what is there, feed the session, run or dispatch the requests it completes."""
        session = conn.session
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (socket.timeout, BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            self.post("watch", conn)
            return
        except OSError:
            self.post("close", conn)
            return
        tasks = self.feed(conn, data)
        if not session.in_order and not conn.eof and not session.closed:
            self.flush(conn)
            self.post("watch", conn)
            for task in tasks:
                self.start_stream(conn, task)
            return
        self.run(conn, tasks)
        if session.in_order:
            self.after_exchange(conn)

    def start_stream(self, conn: Connection, task: Task) -> None:
        """Run an HTTP/2 stream's task as a job of its own, unless the connection already holds
        its share of the workers (``streams_per_connection``): then it waits for one of them."""
        with self.share_lock:
            if conn.streams_running >= self.streams_per_connection:
                conn.streams_waiting.append(task)
                return
            conn.streams_running += 1
        if not self.dispatch(self.run_streams, conn, task):
            self.run_streams(conn, task)  # no room on the pool: the reader runs it

    def run_streams(self, conn: Connection, task: Task | None) -> None:
        """Job: run ``task``, then the connection's waiting streams, until none is left."""
        while task is not None:
            self.run(conn, [task])
            with self.share_lock:
                if conn.streams_waiting and not conn.closed:
                    task = conn.streams_waiting.popleft()
                else:
                    task = None
                    conn.streams_running -= 1

    def after_exchange(self, conn: Connection) -> None:
        """HTTP/1.x: the exchange is answered; close, read on, or watch for the next request."""
        session = conn.session
        if conn.closed:
            return
        if session.closed or (conn.eof and not session.busy):
            self.post("close", conn)
        elif not conn.eof:
            if conn.listener.tls is not None and conn.sock.pending():
                self.read(conn)
            else:
                self.post("watch", conn)

    def on_sleep(self, conn: Connection, task: Task, seconds: float) -> bool:
        """Block this thread (a worker, or the whole worker process) for the wait."""
        self.flush(conn)
        task.sleep(seconds)
        return True

    def on_park(self, conn: Connection, task: Task) -> bool:
        """Write what the stream produced, then wait for the peer (see Driver.on_park)."""
        self.flush(conn)
        return conn.session.park(task)

    def on_flush(self, conn: Connection, task: Task) -> bool:
        """Backpressure for a large body: write it now, waiting for the socket if another
        stream's job is writing (``sendall`` blocks until the peer has taken it)."""
        self.flush(conn, wait=True)
        return True

    def on_sendfile(self, conn: Connection, task: Task, effect: SendFile) -> bool:
        """Write a file range with ``socket.sendfile`` (zero-copy; honours the send timeout)."""
        self.flush(conn)
        if conn.closed:
            return True
        with conn.write_lock:
            try:
                with open(effect.path, "rb") as f:
                    sent = conn.sock.sendfile(f, effect.offset, effect.count)
                if sent != effect.count:
                    raise OSError("file shrank while sending it")
            except OSError:
                conn.closed = True
                self.post("close", conn)
        return True

    def flush(self, conn: Connection, wait: bool = False) -> bool:
        """Write what the session has to send. When another thread is writing to the socket,
        return at once (unless ``wait``): that writer looks at the session again after it lets
        go, so these bytes go out with its next ``sendall`` and no worker blocks on another
        stream's write. Returns whether the session was already closed when the last bytes were
        taken: then everything it will ever send has been written. (Reading ``closed`` after
        taking the bytes would race with another worker ending the last HTTP/2 stream in
        between: the socket would be closed under that worker's final frames.)"""
        session = conn.session
        if conn.closed or session is None:
            return False
        closed = False
        while conn.write_lock.acquire(wait):
            try:
                while True:
                    closed = session.closed
                    data = session.data_to_send()
                    if not data:
                        break
                    conn.sock.sendall(data)
            except OSError:  # includes socket.timeout: the send timeout
                conn.closed = True
                self.post("close", conn)
                return False
            finally:
                conn.write_lock.release()
            if not session.has_data_to_send:
                if closed and not session.in_order:  # the final GOAWAY is out: close
                    self.post("close", conn)
                return closed
            wait = False
        return False

    def close(self, conn: Connection, answer: bytes | None = None) -> None:
        """Forget ``conn`` and cancel its tasks (``answer``: see Lifecycle.close)."""
        self.unwatch(conn)
        if conn not in self.connections:
            return
        with self.share_lock:  # streams that never got a worker: close their coroutines too
            waiting, conn.streams_waiting = list(conn.streams_waiting), collections.deque()
        self.forget(conn, answer, waiting)

    def check_timeouts(self, now: float) -> None:
        """Idle, slow-head and HTTP/2 timeouts (the session decides) of the watched connections;
        one a job holds right now is checked as soon as it is watched again (``watch``), so a
        client whose bytes always arrive just before the tick is not skipped tick after tick."""
        for conn in list(self.connections):
            if conn in self.watched:
                self.check(conn, now)
            else:
                conn.tick_missed = True

    def check(self, conn: Connection, now: float) -> None:
        """One connection's timeouts: when its session says so, flush (a 408, a GOAWAY), close."""
        if conn.session is not None and conn.session.check_timeouts(now):
            try:
                conn.sock.settimeout(0.5)
                self.flush(conn)
            except OSError:
                pass
            self.close(conn)

    def shutdown_connections(self) -> None:
        """Drain: every session shuts down; an idle HTTP/1.x connection closes now unless its
        next request is already in the socket buffer (it is served, with Connection: close);
        HTTP/2 stays for its two-step GOAWAY."""
        for conn in list(self.connections):
            if conn.session is None:
                self.close(conn)
                continue
            if conn in self.watched and request_waiting(conn.session, conn.sock):
                continue  # its next request is already here: read() serves it, then closes
            conn.session.shutdown()
            if conn in self.watched:
                closed = self.flush(conn)
                if closed or self.idle_now(conn):
                    self.close(conn)

    # -- the loop's own commands ----------------------------------------------------------------

    def on_command(self, command: str, conn: Connection) -> None:
        """``watch`` (a job is done with the connection) or ``close``."""
        if command == "close":
            self.close(conn)
        elif not conn.closed:
            if self.stopping and self.idle_now(conn):
                self.close(conn)
            else:
                self.watch(conn)

    def idle_now(self, conn: Connection) -> bool:
        """Whether a draining HTTP/1.x connection can close now: nothing in flight, nothing unread."""
        session = conn.session
        return not session.busy and session.in_order and not has_unread_bytes(conn.sock)

    def watch(self, conn: Connection) -> None:
        """Poll ``conn`` for its next bytes."""
        if conn not in self.watched and not conn.closed:
            self.watched.add(conn)
            conn.idle_since = time.monotonic()
            self.selector.register(conn.sock, READ, conn)
            if conn.tick_missed:
                conn.tick_missed = False
                self.check(conn, conn.idle_since)

    def unwatch(self, conn: Connection) -> None:
        """Stop polling ``conn`` (a job owns it now)."""
        if conn in self.watched:
            self.watched.discard(conn)
            self.selector.unregister(conn.sock)

