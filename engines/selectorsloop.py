"""The selectors engine: one thread, non-blocking sockets, a hand-written event loop.

Model: a single thread waits in ``selectors.DefaultSelector.select()`` for any socket to become
readable or writable, or for the earliest timer. A handler that awaits ``app.wait(s)`` is put on a
timer heap and resumed when due; the loop itself never blocks, so thousands of waiting requests
cost only their coroutine frames. Every HTTP/2 stream is its own coroutine on the same loop.

What it costs: one core at most. CPU work in a handler (``/cpu``) stops every other connection
until it returns, and all protocol parsing shares that one core. TLS handshakes are done
non-blocking (``do_handshake`` retried on readiness).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from typing import Any

from app.db import Query

from .database import Link, Links
from .lifecycle import READ, RECV_SIZE, WRITE, Lifecycle
from .lifecycle import Connection as BaseConnection
from .listeners import Listener
from .tasks import SendFile, Task

__all__ = ["SelectorsEngine"]

log = logging.getLogger("lab.selectors")

HIGH_WATER = 256 * 1024
#: what a non-blocking send raises when the socket takes nothing now (TLS: either direction)
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)


class Connection(BaseConnection):
    """One accepted socket, its session and its output buffer (and a pending sendfile)."""

    __slots__ = ("out", "mask", "handshaking", "last_progress", "flush_waiters", "file")

    def __init__(self, sock: socket.socket, listener: Listener, cid: int) -> None:
        super().__init__(sock, listener, cid)
        self.out = bytearray()
        self.mask = 0
        self.handshaking = listener.tls is not None
        self.last_progress = time.monotonic()
        self.flush_waiters: list[Task] = []
        self.file: list[Any] | None = None  # [file object, offset, bytes left, task] of a sendfile


class SelectorsEngine(Lifecycle):
    """Serve ``app`` on ``listeners`` from one thread with a ``selectors`` loop.

    Args:
        app: the application. config: limits and timeouts. listeners: bound listening sockets.
    """

    name = "selectors"

    def describe(self) -> str:
        """A few words for the start-up line."""
        return "1 thread, non-blocking selectors loop"

    # -- the model's hooks, in the order of engines/lifecycle.py ------------------------------

    def open(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        """Accepted: non-blocking, watched for reading (TLS: the handshake starts)."""
        sock.setblocking(False)
        if listener.tls is not None:
            sock = listener.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        conn = Connection(sock, listener, next(self.ids))
        self.connections.add(conn)
        self.connections_changed()
        self.set_mask(conn, READ)
        if listener.tls is None:
            self.start_session(conn, peer)
        else:
            self.handshake(conn)

    def on_event(self, conn: Connection, mask: int) -> None:
        """Readable and/or writable: read and run, or write what is pending (a PostgreSQL
        connection's socket: the query it runs, engines/database.py)."""
        if conn.__class__ is Link:
            self.links.ready(conn, mask)
            return
        if conn.handshaking:
            self.handshake(conn)
            return
        if mask & WRITE and not conn.closed:
            self.write(conn)
        if mask & READ and not conn.closed:
            self.read(conn)

    def handshake(self, conn: Connection) -> None:
        """Advance a non-blocking TLS handshake (``do_handshake`` retried on readiness)."""
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.set_mask(conn, READ)
            return
        except ssl.SSLWantWriteError:
            self.set_mask(conn, READ | WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self.close(conn)
            return
        conn.handshaking = False
        self.set_mask(conn, READ)
        self.start_session(conn)

    def read(self, conn: Connection) -> None:
        """Read until the socket would block, feed the session, run the tasks it completes."""
        while True:
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                self.set_mask(conn, READ | WRITE)
                return
            except OSError:
                self.close(conn)
                return
            session = conn.session
            if session is None:
                return
            self.run(conn, self.feed(conn, data))
            if conn.closed:
                return
            if conn.eof:
                if not session.busy:
                    self.close(conn)
                else:
                    self.set_mask(conn, WRITE if conn.out else 0)
                return
            if conn.listener.tls is None or not conn.sock.pending():
                return

    def on_sleep(self, conn: Connection, task: Task, seconds: float) -> bool:
        """Park the task on the lifecycle's timer heap; the loop never blocks."""
        self.call_later(seconds, self.run, conn, [task])
        return False

    links: Links | None = None

    def on_query(self, conn: Connection, task: Task, query: Query) -> bool:
        """PostgreSQL: send the query on a connection of the loop's own (libpq non-blocking, its
        socket in this selector) and resume the task when the result is read; SQLite inline."""
        if query.db.name != "postgresql":
            return super().on_query(conn, task, query)
        if self.links is None:
            self.links = Links(self.selector.register, self.selector.modify, self.selector.unregister)
        now = [True]  # done() called before submit() returned: resume from a timer, not from inside run()

        def done(result: Any, error: BaseException | None) -> None:
            task.reply, task.thrown = result, error
            if now[0]:
                self.call_later(0.0, self.run, conn, [task])
            else:
                self.guard(self.run, conn, [task])

        self.links.submit(query, done)
        now[0] = False
        return False

    def on_flush(self, conn: Connection, task: Task) -> bool:
        """Write what the socket takes; past HIGH_WATER unsent, wait for writability."""
        self.flush(conn)
        if conn.closed or len(conn.out) <= HIGH_WATER:
            return True
        conn.flush_waiters.append(task)
        return False

    def on_sendfile(self, conn: Connection, task: Task, effect: SendFile) -> bool:
        """Queue the file range; ``write`` sends it with ``os.sendfile`` as the socket drains."""
        try:
            f = open(effect.path, "rb")
        except OSError:
            self.close(conn)
            task.cancel()
            task.step()
            return False
        conn.file = [f, effect.offset, effect.count, task]
        self.flush(conn)
        return False

    def flush(self, conn: Connection) -> None:
        """Move the session's bytes to the output buffer and write what the socket takes."""
        if conn.closed or conn.session is None:
            return
        data = conn.session.data_to_send()
        if data:
            if not conn.out and conn.file is None:  # nothing queued: the socket first, queue the rest
                try:
                    n = conn.sock.send(data)
                except _WOULD_BLOCK:
                    n = 0
                except OSError:
                    self.close(conn)
                    return
                if n:
                    conn.last_progress = time.monotonic()
                if n < len(data):
                    conn.out += memoryview(data)[n:]
            else:
                conn.out += data
        self.write(conn)

    ran = flush  # after Driver.run: write (an alias, one call less per request)

    def write(self, conn: Connection) -> None:
        """Write the output buffer, then a pending file; set the selector mask for what is left."""
        out = conn.out
        while out:
            try:
                n = conn.sock.send(out)
            except _WOULD_BLOCK:
                break
            except OSError:
                self.close(conn)
                return
            del out[:n]
            conn.last_progress = time.monotonic()
        if not out and conn.file is not None and not self.write_file(conn):
            return
        # Backpressure both ways: while the peer leaves more than HIGH_WATER unread, stop reading
        # it, so its input (pipelined requests, PING/SETTINGS floods) cannot pile up answers.
        read = 0 if conn.eof or len(out) > HIGH_WATER else READ
        if out:
            self.set_mask(conn, read | WRITE)
            return
        self.set_mask(conn, read)
        if conn.session is not None and (conn.session.closed or (conn.eof and not conn.session.busy)):
            self.close(conn)
            return
        if conn.flush_waiters:
            waiters, conn.flush_waiters = conn.flush_waiters, []
            self.run(conn, waiters)

    def write_file(self, conn: Connection) -> bool:
        """Send the pending file range with ``os.sendfile`` until done (True: its task resumed)
        or the socket would block (False: now waiting for writability)."""
        f, offset, left, task = conn.file
        while left > 0:
            try:
                n = os.sendfile(conn.sock.fileno(), f.fileno(), offset, left)
            except (BlockingIOError, InterruptedError):
                conn.file[1], conn.file[2] = offset, left
                self.set_mask(conn, (0 if conn.eof else READ) | WRITE)
                return False
            except OSError:
                self.close(conn)
                return False
            if n == 0:  # the file shrank under us: the framing can no longer be honoured
                self.close(conn)
                return False
            offset += n
            left -= n
            conn.last_progress = time.monotonic()
        f.close()
        conn.file = None
        self.run(conn, [task])
        return not conn.closed

    def set_mask(self, conn: Connection, mask: int) -> None:
        """Register, modify or unregister ``conn`` with the selector for ``mask``."""
        if conn.mask == mask or conn.closed:
            return
        if mask == 0:
            self.selector.unregister(conn.sock)
        elif conn.mask == 0:
            self.selector.register(conn.sock, mask, conn)
        else:
            self.selector.modify(conn.sock, mask, conn)
        conn.mask = mask

    def close(self, conn: Connection, answer: bytes | None = None) -> None:
        """Forget ``conn``, cancel its tasks and a pending file (``answer``: Lifecycle.close)."""
        if conn.closed:
            return
        if conn.mask:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        waiting, conn.flush_waiters = conn.flush_waiters, []
        self.forget(conn, None if conn.out else answer, waiting)
        if conn.file is not None:
            f, _, _, task = conn.file
            conn.file = None
            f.close()
            task.cancel()
            task.step()

    def stop(self) -> None:
        """The loop ended: close the PostgreSQL connections too."""
        super().stop()
        if self.links is not None:
            self.links.close()

    def check_timeouts(self, now: float) -> None:
        """Send timeout (no write progress), TLS handshake timeout, and the session's own; the
        queries that waited for a PostgreSQL connection too long (503)."""
        if self.links is not None:
            self.links.tick(now)
        for conn in list(self.connections):
            if (conn.out or conn.file) and self.send_stalled(conn.last_progress, now):
                self.close(conn)
            elif conn.session is None:
                if now - conn.last_progress > self.config.header_timeout:
                    self.close(conn)
            elif conn.session.check_timeouts(now):
                self.flush(conn)
                if not conn.closed and not conn.out:
                    self.close(conn)
