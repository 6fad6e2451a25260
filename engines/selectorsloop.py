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

import collections
import heapq
import itertools
import logging
import os
import selectors
import signal
import socket
import ssl
import time
from typing import Any

from .config import ServerConfig
from .listeners import Listener, connection_info, tune_socket
from .session import FLUSH, PARK, SendFile, Session, Sleep, Task

__all__ = ["SelectorsEngine"]

log = logging.getLogger("lab.selectors")

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
HIGH_WATER = 256 * 1024
RECV_SIZE = 256 * 1024
BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\n"
            b"retry-after: 1\r\nconnection: close\r\n\r\ntoo many connections")


class _Connection:
    """One accepted socket, its session and its output buffer."""

    __slots__ = ("sock", "session", "out", "mask", "handshaking", "listener", "last_progress",
                 "flush_waiters", "closed", "id", "eof", "file")

    def __init__(self, sock: socket.socket, listener: Listener, cid: int) -> None:
        self.sock = sock
        self.listener = listener
        self.session: Session | None = None
        self.out = bytearray()
        self.mask = 0
        self.handshaking = listener.tls is not None
        self.last_progress = time.monotonic()
        self.flush_waiters: list[Task] = []
        self.closed = False
        self.id = cid
        self.eof = False
        self.file: list[Any] | None = None  # [file object, offset, bytes left, task] of a sendfile


class SelectorsEngine:
    """Serve ``app`` on ``listeners`` from one thread with a ``selectors`` loop.

    Args:
        app: the application. config: limits and timeouts. listeners: bound listening sockets.
    """

    name = "selectors"

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, _Connection] = {}
        self.timers: list[tuple[float, int, Task, _Connection]] = []
        self.seq = itertools.count()
        self.ids = itertools.count(1)
        self.stopping = False
        self.drain_deadline = 0.0

    def describe(self) -> str:
        """A few words for the start-up line."""
        return "1 thread, non-blocking selectors loop"

    # -- lifecycle ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM, then drain in-flight requests for ``drain_timeout`` s."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old_fd = signal.set_wakeup_fd(wake_w.fileno())
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.selector.register(wake_r, READ, "wake")
        for listener in self.listeners:
            listener.sock.setblocking(False)
            self.selector.register(listener.sock, READ, listener)
        next_check = time.monotonic() + 1.0
        try:
            while not (self.stopping and (not self.connections or time.monotonic() > self.drain_deadline)):
                now = time.monotonic()
                timeout = next_check - now
                if self.timers:
                    timeout = min(timeout, self.timers[0][0] - now)
                for key, mask in self.selector.select(max(0.0, timeout)):
                    data = key.data
                    if data == "wake":
                        try:
                            while wake_r.recv(512):
                                pass
                        except BlockingIOError:
                            pass
                    elif isinstance(data, Listener):
                        self._accept(data)
                    else:
                        if mask & WRITE and not data.closed:
                            self._on_writable(data)
                        if mask & READ and not data.closed:
                            self._on_readable(data)
                now = time.monotonic()
                while self.timers and self.timers[0][0] <= now:
                    _, _, task, conn = heapq.heappop(self.timers)
                    self._run(conn, [task])
                if now >= next_check:
                    next_check = now + 1.0
                    self._check_timeouts(now)
        finally:
            for conn in list(self.connections.values()):
                self._close(conn)
            for listener in self.listeners:
                listener.sock.close()
            for s, handler in old.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_fd)
            self.selector.close()
            wake_r.close()
            wake_w.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return
        log.info("signal %d: draining %d connections", signum, len(self.connections))
        self.stopping = True
        self.drain_deadline = time.monotonic() + self.config.drain_timeout
        for listener in self.listeners:
            self.selector.unregister(listener.sock)
            listener.sock.close()
        for conn in list(self.connections.values()):
            if conn.session is None:
                self._close(conn)
            else:
                conn.session.shutdown()
                self._flush(conn)

    # -- connections --------------------------------------------------------------------------

    def _accept(self, listener: Listener) -> None:
        for _ in range(64):
            try:
                sock, peer = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            tune_socket(sock)
            if len(self.connections) >= self.config.max_connections:
                try:
                    sock.send(BUSY_503)
                except OSError:
                    pass
                sock.close()
                continue
            if listener.tls is not None:
                sock = listener.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = _Connection(sock, listener, next(self.ids))
            self.connections[sock.fileno()] = conn
            self._set_mask(conn, READ)
            if listener.tls is None:
                self._start_session(conn, peer)
            else:
                self._handshake(conn)

    def _start_session(self, conn: _Connection, peer: Any = None) -> None:
        sock = conn.sock
        try:
            peer = peer or sock.getpeername()
        except OSError:
            peer = None
        info = connection_info(conn.id, self.name, peer, sock.getsockname(),
                               sock if conn.listener.tls is not None else None)
        conn.session = Session(self.app, self.config, info)
        conn.session.sendfile = conn.listener.tls is None
        self._flush(conn)

    def _handshake(self, conn: _Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_mask(conn, READ)
            return
        except ssl.SSLWantWriteError:
            self._set_mask(conn, READ | WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self._close(conn)
            return
        conn.handshaking = False
        self._set_mask(conn, READ)
        self._start_session(conn)

    def _on_readable(self, conn: _Connection) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        while True:
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                self._set_mask(conn, READ | WRITE)
                return
            except OSError:
                self._close(conn)
                return
            if conn.session is None:
                return
            if not data:
                conn.eof = True
            self._run(conn, conn.session.receive(data))
            if conn.closed:
                return
            if conn.eof:
                if not conn.session.busy:
                    self._close(conn)
                else:
                    self._set_mask(conn, WRITE if conn.out else 0)
                return
            if conn.listener.tls is None or not conn.sock.pending():
                return

    def _on_writable(self, conn: _Connection) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        self._write(conn)

    def _run(self, conn: _Connection, tasks: list[Task]) -> None:
        """Step tasks until each sleeps, parks, waits for a flush, or ends; then write."""
        queue = collections.deque(tasks)
        session = conn.session
        while queue:
            task = queue.popleft()
            while True:
                effect = task.step()
                if effect is None:
                    break
                if effect.__class__ is Sleep:
                    heapq.heappush(self.timers, (time.monotonic() + effect.seconds, next(self.seq), task, conn))
                    break
                if effect is PARK:
                    if session.park(task):
                        continue
                    break
                if effect is FLUSH:
                    self._flush(conn)
                    if conn.closed:  # nobody to write to: stop producing the body
                        task.cancel()
                    elif len(conn.out) > HIGH_WATER:
                        conn.flush_waiters.append(task)
                        break
                    continue
                if effect.__class__ is SendFile:
                    try:
                        f = open(effect.path, "rb")
                    except OSError:
                        self._close(conn)
                        task.cancel()
                        task.step()
                        break
                    conn.file = [f, effect.offset, effect.count, task]
                    self._flush(conn)
                    break
            queue.extend(session.runnable())
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        if conn.closed or conn.session is None:
            return
        data = conn.session.data_to_send()
        if data:
            conn.out += data
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        out = conn.out
        while out:
            try:
                n = conn.sock.send(out)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except OSError:
                self._close(conn)
                return
            del out[:n]
            conn.last_progress = time.monotonic()
        if not out and conn.file is not None and not self._write_file(conn):
            return
        # Backpressure both ways: while the peer leaves more than HIGH_WATER unread, stop reading
        # it, so its input (pipelined requests, PING/SETTINGS floods) cannot pile up answers.
        read = 0 if conn.eof or len(out) > HIGH_WATER else READ
        if out:
            self._set_mask(conn, read | WRITE)
            return
        self._set_mask(conn, read)
        if conn.session is not None and (conn.session.closed or (conn.eof and not conn.session.busy)):
            self._close(conn)
            return
        if conn.flush_waiters:
            waiters, conn.flush_waiters = conn.flush_waiters, []
            self._run(conn, waiters)

    def _write_file(self, conn: _Connection) -> bool:
        """Send the pending file range with ``os.sendfile`` until done (True: its task resumed)
        or the socket would block (False: now waiting for writability)."""
        f, offset, left, task = conn.file
        while left > 0:
            try:
                n = os.sendfile(conn.sock.fileno(), f.fileno(), offset, left)
            except (BlockingIOError, InterruptedError):
                conn.file[1], conn.file[2] = offset, left
                self._set_mask(conn, (0 if conn.eof else READ) | WRITE)
                return False
            except OSError:
                self._close(conn)
                return False
            if n == 0:  # the file shrank under us: the framing can no longer be honoured
                self._close(conn)
                return False
            offset += n
            left -= n
            conn.last_progress = time.monotonic()
        f.close()
        conn.file = None
        self._run(conn, [task])
        return not conn.closed

    def _set_mask(self, conn: _Connection, mask: int) -> None:
        if conn.mask == mask or conn.closed:
            return
        if mask == 0:
            self.selector.unregister(conn.sock)
        elif conn.mask == 0:
            self.selector.register(conn.sock, mask, conn)
        else:
            self.selector.modify(conn.sock, mask, conn)
        conn.mask = mask

    def _close(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.connections.pop(conn.sock.fileno(), None)
        if conn.mask:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        if conn.file is not None:
            f, _, _, task = conn.file
            conn.file = None
            f.close()
            task.cancel()
            task.step()
        if conn.session is not None:
            for task in conn.session.connection_lost() + conn.flush_waiters:
                task.step()
            conn.flush_waiters = []

    def _check_timeouts(self, now: float) -> None:
        for conn in list(self.connections.values()):
            if (conn.out or conn.file) and now - conn.last_progress > self.config.send_timeout:
                self._close(conn)
            elif conn.session is None:
                if now - conn.last_progress > self.config.header_timeout:
                    self._close(conn)
            elif conn.session.check_timeouts(now):
                self._flush(conn)
                if not conn.closed and not conn.out:
                    self._close(conn)
