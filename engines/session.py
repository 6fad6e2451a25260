"""The glue between one protocol connection and the app, written once for all four engines.

Theory of operation
-------------------
An engine owns sockets and scheduling; a :class:`Session` owns one connection's protocol object
(HTTP/1.x or HTTP/2, chosen from the first bytes or from ALPN) and the requests in flight on it.
The engine's whole conversation with a session is::

    tasks = session.receive(data)        # bytes read (b"" = EOF) -> Tasks that can run now
    effect = task.step()                 # run a request's coroutine until it yields or ends
    session.data_to_send()               # bytes to write, after every receive() and step()
    session.runnable()                   # Tasks made ready by a step (pipelined requests)
    session.park(task)                   # on PARK: False = the session will hand it back later
    session.check_timeouts(now)          # once a second: True = flush and close the socket
    session.shutdown() / session.connection_lost()

The session turns protocol events into :class:`engines.exchange.Exchange` objects, one per
request, each the :class:`engines.tasks.Task` that answers it; the effects those tasks yield are in
engines/tasks.py, the gates, body reading and response writers in engines/exchange.py. The
session also decides the protocol (sniffing the client preface, ALPN, ``--http``), the
per-protocol timeouts, and the request id (a safe client ``X-Request-Id`` or
``<process>-<connection>-<stream>``, echoed when the client sent one or the access log is on).

Threads: single-threaded engines pass no lock. The threadpool engine passes a ``threading.Lock``
that guards the protocol object, which is not thread-safe; handlers themselves run outside it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from app.hosts import safe_request_id
from app.messages import ConnectionInfo, new_request
from protocol import events as ev
from protocol.base import ServerConnection
from protocol.errors import ErrorCode
from protocol.h2_connection import H2Config, H2Connection
from protocol.h2_frames import PREFACE as H2_PREFACE
from protocol.http1 import H1Config, H1Connection

from .accesslog import access_log_for
from .config import ServerConfig
from .exchange import Exchange
from .glue import H1, H2, Glue
from .tasks import NO_LOCK, Task

__all__ = ["Session", "H2_PREFACE"]

log = logging.getLogger("lab.session")


_token: list[Any] = [0, ""]


def _process_token() -> str:
    """A short id of this process (pid + 16 random bits; new after a fork) for request ids."""
    pid = os.getpid()
    if _token[0] != pid:
        _token[0], _token[1] = pid, f"{pid:x}{os.urandom(2).hex()}"
    return _token[1]


class Session:
    """One client connection's protocol state and requests in flight (see the module docstring).

    Args:
        app: the application (``app.App``); ``await app.handle(request)`` gives a Response.
        config: limits and timeouts.
        info: connection facts for ``request.info`` (peer, engine, TLS, ALPN).
        lock: a lock guarding the protocol object when several threads step tasks.
    """

    def __init__(self, app: Any, config: ServerConfig, info: ConnectionInfo,
                 lock: Any = None) -> None:
        self.app = app
        self.metrics = getattr(app, "metrics", None)
        self.config = config
        self.info = info
        self.lock = lock if lock is not None else NO_LOCK
        self._threaded = lock is not None
        if lock is None:  # one thread: the engine calls the bodies themselves, with no lock around
            self.receive = self._receive  # type: ignore[method-assign]
            self.data_to_send = self._data_to_send  # type: ignore[method-assign]
        # The engine sets this when it handles the SendFile effect (plain TCP, not TLS).
        self.sendfile = False
        #: the protocol object, ``None`` until the protocol is known (the first bytes, or ALPN)
        self.conn: ServerConnection | None = None
        #: the per-protocol glue (engines/glue.py), chosen with ``conn``
        self.glue: Glue = H1
        self._sniff = b""
        self._prefix = b""
        self._streams: dict[int, Exchange] = {}
        self._runnable: list[Task] = []
        self._closed = False
        self._shutting_down = False
        now = time.monotonic()
        self.opened_at = now
        self.last_activity = now
        self.last_exchange = now  # HTTP/2 idle: a request or response, not PING/SETTINGS/bytes
        self.partial_since: float | None = None  # HTTP/2: a partial frame seen buffered since
        self.head_started: float | None = None
        self.requests = 0
        # Serving features (docs/serving.md): off costs one test per request each.
        self.access_log = access_log_for(config.access_log_file, config.log_format) if config.access_log else None
        self._rid = f"{_process_token()}-{info.connection_id}-"
        self.gated = bool((config.redirect_http and not info.tls) or (info.tls and info.cert_names))
        self.authority_ok: tuple[str, bool] = ("", True)
        # The last request's field tuple and the client's safe X-Request-Id in it (or None).
        self._scanned_headers: Any = None
        self._scanned_id: str | None = None
        if info.alpn == "h2" or config.http == "2":
            self._start_h2()
        elif info.alpn is not None or info.tls or config.http == "1":
            self._start_h1()

    # -- protocol selection -------------------------------------------------------------------

    def _h1_config(self) -> H1Config:
        c = self.config
        return H1Config(max_target_length=c.max_target_length, max_header_bytes=c.max_header_bytes,
                        max_body_size=c.max_body_size, h2c_upgrade=not self.info.tls and c.http == "auto")

    def _h2_config(self) -> H2Config:
        return H2Config()

    def _start_h1(self) -> None:
        self.conn = H1Connection(self._h1_config(), scheme="https" if self.info.tls else "http")
        self.glue = H1
        H1.start(self.conn)

    def _start_h2(self) -> None:
        self.conn = H2Connection(self._h2_config())
        self.glue = H2

    @property
    def http_version(self) -> str:
        """``"1.1"``, ``"2"``, or ``""`` before the protocol is known."""
        return self.conn.http_version if self.conn is not None else ""

    # -- engine-facing API --------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Task]:
        """Feed bytes read from the socket (``b""`` for EOF); return the tasks that can run now."""
        with self.lock:
            return self._receive(data)

    def _receive(self, data: bytes) -> list[Task]:
        self.last_activity = time.monotonic()
        if self.conn is None:
            if data:
                self._sniff += data
                n = min(len(self._sniff), len(H2_PREFACE))
                if self._sniff[:n] == H2_PREFACE[:n] and n < len(H2_PREFACE):
                    return []
                self._start_h2() if self._sniff[:n] == H2_PREFACE else self._start_h1()
                data, self._sniff = self._sniff, b""
            else:
                self._closed = True
                return []
        if self.head_started is None and data and not self._streams:
            self.head_started = self.last_activity
        if data:
            self.glue.before_receive(self.conn)
        self.handle_events(self.conn.receive_data(data))
        ready, self._runnable = self._runnable, []
        return ready

    def runnable(self) -> list[Task]:
        """Tasks made ready by the last ``step()`` (the next pipelined request, a woken waiter)."""
        if not self._runnable:
            return []
        with self.lock:
            ready, self._runnable = self._runnable, []
            return ready

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return bytes (no lock: a hint another thread may
        change right after; the writer looks again after releasing its write lock)."""
        return bool(self._prefix) or (self.conn is not None and self.conn.has_data_to_send)

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket, in order."""
        with self.lock:
            return self._data_to_send()

    def _data_to_send(self) -> bytes:
        if self.conn is None:
            return b""
        out = self.conn.data_to_send()
        if self._prefix:
            out, self._prefix = self._prefix + out, b""
        return out

    @property
    def in_order(self) -> bool:
        """True when this connection's requests are served one after another, in order (HTTP/1.x,
        or the protocol not known yet); False when its streams run concurrently (HTTP/2): then the
        engine may run each task as its own job and keeps the connection until its two-step
        GOAWAY is written (``Glue.in_order``)."""
        return self.glue.in_order

    def finished(self, stream_id: int) -> None:
        """The exchange of ``stream_id`` has answered (under the lock): it is no longer in flight."""
        self._streams.pop(stream_id, None)

    def exchanges(self) -> list[Exchange]:
        """The requests in flight."""
        return list(self._streams.values())

    @property
    def closed(self) -> bool:
        """True when the socket should be closed once ``data_to_send()`` has been written."""
        return self._closed or (self.conn is not None and self.conn.closed)

    @property
    def busy(self) -> bool:
        """True while a request is in flight (a graceful stop waits for these)."""
        return bool(self._streams)

    def park(self, task: Task) -> bool:
        """The engine lets go of a task that yielded PARK. Returns True if it was woken meanwhile
        (run it again now), False if the session will return it from ``receive()`` later."""
        with self.lock:
            if task.woken or task.cancelled:
                task.woken = False
                return True
            task.parked = True
            return False

    def check_timeouts(self, now: float) -> bool:
        """Apply the request-head and keep-alive idle timeouts (s, ``time.monotonic()``), and the
        send timeout of HTTP/2 streams waiting for a flow-control window (RFC 9113 §6.9): a peer
        that leaves a window at zero for ``send_timeout`` is ended with GOAWAY(ENHANCE_YOUR_CALM).

        Returns True when the engine should flush ``data_to_send()`` (a 408, a GOAWAY) and close.
        """
        c = self.config
        with self.lock:
            if self._streams:
                for st in self._streams.values():
                    if not st.complete and now > st.opened + c.body_timeout + st.size / c.body_min_rate:
                        self.glue.body_timed_out(self.conn)  # 408, or GOAWAY(ENHANCE_YOUR_CALM)
                        self._closed = True
                        return True
                if self.glue.send_stalled(self, now):
                    self._closed = True
                    return True
                return False
            if self.conn is None:
                return now - self.opened_at > c.header_timeout
            if self.glue.idle_timeouts(self, now):
                self._closed = True
                return True
            return False

    def shutdown(self) -> None:
        """Graceful stop: finish requests in flight, take no new ones (HTTP/1 ``Connection:
        close``, HTTP/2 two-step GOAWAY); ``closed`` becomes true when done."""
        with self.lock:
            self._shutting_down = True
            if self.conn is None:
                self._closed = True
            else:
                self.conn.start_shutdown()
                if not self._streams and self.glue.closes_when_idle_on_shutdown():
                    self._closed = True

    def connection_lost(self) -> list[Task]:
        """The socket is gone: cancel every request; returns parked tasks for the engine to step
        once more (so their coroutines close)."""
        with self.lock:
            self._closed = True
            woken: list[Task] = []
            for t in self._streams.values():
                t.cancel()
                if t.parked:
                    t.parked = False
                    woken.append(t)
            self._streams.clear()
            return woken

    # -- events -> requests -------------------------------------------------------------------

    def handle_events(self, events: list[ev.Event]) -> None:
        """Turn the protocol's events into exchanges, body chunks, wake-ups (under the lock)."""
        for event in events:
            kind = type(event)
            if kind is ev.RequestReceived:
                self._on_request(event, b"", event.end_stream)
            elif kind is ev.DataReceived:
                st = self._streams.get(event.stream_id)
                if st is not None and st.error is None:
                    st.size += len(event.data)
                    if st.size > self.config.max_body_size:
                        st.error = 413
                        st.chunks.clear()
                    else:
                        st.chunks.append(event.data)
            elif kind is ev.MessageComplete:
                st = self._streams.get(event.stream_id)
                if st is not None and not st.complete:  # complete from the start: nobody waits
                    st.complete = True
                    self._wake(st)
            elif kind is ev.StreamReset:
                st = self._streams.pop(event.stream_id, None)
                if st is not None:
                    st.cancel()
                    self._wake(st, force=True)
            elif kind is ev.FlowControlUpdated:
                if event.stream_id == 0:
                    for st in self._streams.values():
                        self._wake(st)
                else:
                    st = self._streams.get(event.stream_id)
                    if st is not None:
                        self._wake(st)
            elif kind is ev.ConnectionTerminated:
                if event.status is not None:
                    self._count_error(event.status)
                for st in list(self._streams.values()):
                    st.cancel()
                    self._wake(st, force=True)
                self._streams.clear()
            elif kind is ev.ProtocolSwitched:
                self._switch_to_h2(event)

    def _switch_to_h2(self, event: ev.ProtocolSwitched) -> None:
        self._prefix += self.conn.data_to_send()  # the 101 Switching Protocols
        self.conn = H2Connection.from_upgrade(event.settings_header, event.request, self._h2_config())
        self.glue = H2  # the upgrade swaps the glue with the protocol object
        self._on_request(event.request, event.body, True, http_version="2")
        if event.leftover:
            self.handle_events(self.conn.receive_data(event.leftover))

    def _on_request(self, event: ev.RequestReceived, body: bytes, complete: bool,
                    http_version: str | None = None) -> None:
        self.requests += 1
        self.head_started = None
        self.last_exchange = self.last_activity  # set as the bytes came (receive, respond)
        headers = event.headers
        if headers is self._scanned_headers:  # the same field tuple as before (a cached head)
            client_id = self._scanned_id
        else:
            client_id = None
            for name, value in headers:
                if name == "x-request-id":
                    client_id = safe_request_id(value)
                    break
            if type(headers) is tuple:  # immutable: the answer holds while we hold the tuple
                self._scanned_headers, self._scanned_id = headers, client_id
        st = Exchange(self, event.stream_id, event.expect_continue)
        st.request = request = new_request(
            event.method, event.target, list(headers), http_version or event.http_version, event.authority,
            event.scheme, event.stream_id, self.info, client_id or f"{self._rid}{event.stream_id}", st.read_body)
        st.echo_id = client_id is not None or self.access_log is not None
        if not complete:  # a body is to come: the app may refuse it first (RFC 9110 §10.1.1)
            self.glue.body_check(st, request, event.expect_continue)
        if body:
            st.chunks.append(body)
            st.size = len(body)
        st.complete = complete
        st.coro = st.respond()
        self._streams[event.stream_id] = st
        self._runnable.append(st)

    def _wake(self, task: Exchange, force: bool = False) -> None:
        if not (task.waiting or force):
            return
        task.waiting = False
        if task.parked:
            task.parked = False
            self._runnable.append(task)
        else:
            task.woken = True
            if force and task.cancelled and not self._threaded:
                # Single-threaded engines: a cancelled task sleeping on a timer is closed now,
                # not when the timer fires (stepping a cancelled task again is a no-op).
                self._runnable.append(task)

    def _count_error(self, status: int) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.observe("(protocol)", status, 0.0)

    def task_failed(self, task: Task) -> None:
        """``task``'s coroutine raised: reset its stream with INTERNAL_ERROR (RFC 9113 §7)."""
        with self.lock:
            st = self._streams.pop(task.stream_id, None)
            if st is not None and self.conn is not None:
                self.conn.reset_stream(task.stream_id, ErrorCode.INTERNAL_ERROR)
