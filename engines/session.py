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

A :class:`Task` wraps one request's coroutine (``_respond``): route, run the handler, send the
response. The coroutine yields effects to its engine:

- :class:`app.effects.Sleep` (the handler awaited ``app.wait``): resume it after that long;
- :data:`PARK`: it waits for the peer (a request body, an HTTP/2 flow-control window); the
  session returns it from a later ``receive()``. Parking is race-free across threads: the waiter
  registers under the session lock before yielding, and ``park()`` reports a wake-up that came
  in between, so a threadpool reader and worker can never lose one;
- :data:`FLUSH`: it produced a lot of output; write it before asking for more (backpressure);
- :class:`SendFile` (HTTP/1.x on plain TCP, when the engine set ``session.sendfile``): write the
  pending output, then a static file's bytes with ``sendfile`` (zero-copy), then resume it.

Serving features (README, "Serving features"), decided here once for every engine and both
protocols, before the app runs: ``--redirect-http`` (308 on the plain port) and 421 over HTTP/2 +
TLS for an ``:authority`` the connection's certificate does not cover (``_gate``); the app's
expect check (``app.check_expect``) for a request whose body is still to come (HTTP/1.1 with
``Expect``, every such HTTP/2 stream; an HTTP/2 refusal ends with RST_STREAM(NO_ERROR)); the
request id (a safe client ``X-Request-Id`` or ``<process>-<connection>-<stream>``, echoed when
the client sent one or the access log is on); one access log line per request when on.

Threads: single-threaded engines pass no lock. The threadpool engine passes a ``threading.Lock``
that guards the protocol object, which is not thread-safe; handlers themselves run outside it.
"""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from app.effects import Effect, Sleep
from app.hosts import cert_covers, host_of, safe_request_id
from app.messages import ConnectionInfo, FileBody, HTTPError, Request, Response
from app.routing import error_response
from protocol import events as ev
from protocol.errors import ErrorCode, LocalProtocolError
from protocol.http1 import H1Config, H1Connection
from protocol.h2_connection import H2Config, H2Connection

from .accesslog import access_log_for
from .config import ServerConfig

__all__ = ["Session", "Task", "Park", "Flush", "SendFile", "PARK", "FLUSH", "Sleep", "http_date", "H2_PREFACE"]

log = logging.getLogger("lab.session")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FILE_CHUNK = 256 * 1024
FLUSH_ABOVE = 256 * 1024


class Park(Effect):
    """Effect: the task waits for the peer; the session hands it back from ``receive()``."""


class Flush(Effect):
    """Effect: write pending output before resuming the task (backpressure for large bodies)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SendFile(Effect):
    """Effect: write pending output, then ``count`` bytes (from ``offset``) of the file at
    ``path`` straight to the socket (``socket.sendfile``/``os.sendfile``, zero-copy), then
    resume the task. Only yielded when the engine set ``Session.sendfile`` (plain TCP)."""

    path: str
    offset: int
    count: int


PARK = Park()
FLUSH = Flush()

_date_cache: list[Any] = [0, ""]


def http_date() -> str:
    """The current time as an IMF-fixdate (RFC 9110 §5.6.7), recomputed at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = email.utils.formatdate(now, usegmt=True)
    return _date_cache[1]


class _Suspend:
    """Awaitable that yields one effect to the engine."""

    __slots__ = ("effect",)

    def __init__(self, effect: Effect) -> None:
        self.effect = effect

    def __await__(self):
        yield self.effect


_PARK_AWAIT = _Suspend(PARK)
_FLUSH_AWAIT = _Suspend(FLUSH)


class Task:
    """One request's coroutine, stepped by an engine. ``step()`` returns the next effect, or
    ``None`` when the request is finished (or was cancelled)."""

    __slots__ = ("session", "stream_id", "coro", "cancelled", "parked", "woken", "waiting", "wakeup")

    def __init__(self, session: "Session", stream_id: int, coro: Any) -> None:
        self.session = session
        self.stream_id = stream_id
        self.coro = coro
        self.cancelled = False
        self.parked = False   # the engine has let go of it; the session owns it
        self.woken = False    # woken after registering a wait, before park() ran
        self.waiting = False  # registered as waiting (body data or flow-control window)
        self.wakeup: threading.Event | None = None  # set while sleep() blocks a thread

    def step(self) -> Effect | None:
        """Run until the next effect. Returns ``None`` when done; never raises ``Exception``."""
        if self.cancelled:
            try:
                self.coro.close()
            except (RuntimeError, ValueError):  # ignored GeneratorExit / running in another thread
                log.warning("request task on stream %d did not close cleanly", self.stream_id)
            return None
        try:
            return self.coro.send(None)
        except StopIteration:
            return None
        except Exception:  # a bug in the glue: log once, end this request only
            log.exception("request task failed on stream %d", self.stream_id)
            self.session._task_failed(self)
            return None

    def cancel(self) -> None:
        """Mark cancelled; the next ``step()`` closes the coroutine (GeneratorExit in the handler).
        A thread blocked in :meth:`sleep` for this task wakes at once."""
        self.cancelled = True
        wakeup = self.wakeup
        if wakeup is not None:
            wakeup.set()

    def sleep(self, seconds: float) -> None:
        """Blocking engines' way to honour a :class:`Sleep` effect: block this thread for
        ``seconds`` (s), or less when the task is cancelled meanwhile (an HTTP/2 stream reset,
        the connection lost), so that the worker is freed at once."""
        if self.cancelled:
            return
        event = self.wakeup = threading.Event()
        if not self.cancelled:
            event.wait(seconds)
        self.wakeup = None


class _Stream:
    """A request in flight: its Request, body as it arrives, and the task answering it."""

    __slots__ = ("request", "chunks", "size", "complete", "error", "expect_continue",
                 "continue_sent", "task", "started", "opened", "status", "sent_bytes", "check", "echo_id",
                 "blocked_since")

    def __init__(self, request: Request, expect_continue: bool) -> None:
        self.request = request
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.error: int | None = None
        self.expect_continue = expect_continue
        self.continue_sent = False
        self.task: Task | None = None
        self.started = time.perf_counter()
        self.opened = time.monotonic()  # the body's deadline counts from here (body_timeout)
        self.status = 0
        self.sent_bytes = 0
        self.check = False    # ask app.check_expect before the body is read
        self.echo_id = False  # send X-Request-Id
        self.blocked_since: float | None = None  # HTTP/2: waiting for a window since (monotonic)


_conn_ids = itertools.count(1)
_token: list[Any] = [0, ""]
_SAFE_HOST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:")


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
        self.config = config
        self.info = info
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self._threaded = lock is not None
        # The engine sets this when it handles the SendFile effect (plain TCP, not TLS).
        self.sendfile = False
        self.conn: Any = None
        self._sniff = b""
        self._prefix = b""
        self._streams: dict[int, _Stream] = {}
        self._runnable: list[Task] = []
        self._closed = False
        self._shutting_down = False
        now = time.monotonic()
        self.opened_at = now
        self.last_activity = now
        self.last_exchange = now  # HTTP/2 idle: a request or response, not PING/SETTINGS/bytes
        self._partial_since: float | None = None  # HTTP/2: a partial frame seen buffered since
        self.head_started: float | None = None
        self.requests = 0
        # Serving features (README "Serving features"): off costs one test per request each.
        self._access = access_log_for(config.access_log_file, config.log_format) if config.access_log else None
        self._rid = f"{_process_token()}-{info.connection_id}-"
        self._gated = bool((config.redirect_http and not info.tls) or (info.tls and info.cert_names))
        self._authority_ok: tuple[str, bool] = ("", True)
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
        self.conn.set_date(http_date())

    def _start_h2(self) -> None:
        self.conn = H2Connection(self._h2_config())

    @property
    def http_version(self) -> str:
        """``"1.1"``, ``"2"``, or ``""`` before the protocol is known."""
        return self.conn.http_version if self.conn is not None else ""

    # -- engine-facing API --------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Task]:
        """Feed bytes read from the socket (``b""`` for EOF); return the tasks that can run now."""
        with self.lock:
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
            if not self.conn.multiplexed and data:
                self.conn.set_date(http_date())
            self._handle_events(self.conn.receive_data(data))
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
            if self.conn is None:
                return b""
            out = self.conn.data_to_send()
            if self._prefix:
                out, self._prefix = self._prefix + out, b""
            return out

    @property
    def multiplexed(self) -> bool:
        """True when streams of this connection run concurrently (HTTP/2): the engine may run
        each task as its own job and keeps the connection for its two-step GOAWAY on drain."""
        return self.conn is not None and self.conn.multiplexed

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
                        return self._body_timed_out()
                if self.conn.multiplexed and any(
                        st.blocked_since is not None and now - st.blocked_since > c.send_timeout
                        for st in self._streams.values()):
                    self.conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "send timeout: window left at zero")
                    self._closed = True
                    return True
                return False
            if self.conn is None:
                return now - self.opened_at > c.header_timeout
            if not self.conn.multiplexed:
                if self.conn.awaiting_head_bytes:
                    start = self.head_started or self.last_activity
                    if now - start > c.header_timeout:
                        self.conn.set_date(http_date())
                        self.conn.send_timeout_error()
                        self._closed = True
                        return True
                    return False
                if now - self.last_activity > c.keepalive_timeout:
                    self._closed = True
                    return True
                return False
            # HTTP/2 without streams: a frame or header block left partial for header_timeout
            # (slowloris), or no request for keepalive_timeout (frames such as PING do not count).
            if self.conn.awaiting_frame_bytes:
                if self._partial_since is None:
                    self._partial_since = now
                elif now - self._partial_since > c.header_timeout:
                    self.conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "request head timeout")
                    self._closed = True
                    return True
            else:
                self._partial_since = None
            if now - self.last_exchange > c.keepalive_timeout:
                self.conn.close_connection(ErrorCode.NO_ERROR)
                self._closed = True
                return True
            return False

    def _body_timed_out(self) -> bool:
        """A request body is too slow (``body_timeout``, ``body_min_rate``): 408 and close over
        HTTP/1.x, GOAWAY(ENHANCE_YOUR_CALM) over HTTP/2. Returns True (flush, then close)."""
        if self.conn.multiplexed:
            self.conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "request body timeout")
        else:
            self.conn.set_date(http_date())
            self.conn.send_timeout_error("request body not received in time")
        self._closed = True
        return True

    def shutdown(self) -> None:
        """Graceful stop: finish requests in flight, take no new ones (HTTP/1 ``Connection:
        close``, HTTP/2 two-step GOAWAY); ``closed`` becomes true when done."""
        with self.lock:
            self._shutting_down = True
            if self.conn is None:
                self._closed = True
            else:
                self.conn.start_shutdown()
                if not self._streams and not self.conn.multiplexed:
                    self._closed = True

    def connection_lost(self) -> list[Task]:
        """The socket is gone: cancel every request; returns parked tasks for the engine to step
        once more (so their coroutines close)."""
        with self.lock:
            self._closed = True
            woken: list[Task] = []
            for st in self._streams.values():
                t = st.task
                if t is not None:
                    t.cancel()
                    if t.parked:
                        t.parked = False
                        woken.append(t)
            self._streams.clear()
            return woken

    # -- events -> requests -------------------------------------------------------------------

    def _handle_events(self, events: list[ev.Event]) -> None:
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
                if st is not None:
                    st.complete = True
                    self._wake(st)
            elif kind is ev.StreamReset:
                st = self._streams.pop(event.stream_id, None)
                if st is not None and st.task is not None:
                    st.task.cancel()
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
                    if st.task is not None:
                        st.task.cancel()
                        self._wake(st, force=True)
                self._streams.clear()
            elif kind is ev.ProtocolSwitched:
                self._switch_to_h2(event)

    def _switch_to_h2(self, event: ev.ProtocolSwitched) -> None:
        self._prefix += self.conn.data_to_send()  # the 101 Switching Protocols
        self.conn = H2Connection.from_upgrade(event.settings_header, event.request, self._h2_config())
        self._on_request(event.request, event.body, True, http_version="2")
        if event.leftover:
            self._handle_events(self.conn.receive_data(event.leftover))

    def _on_request(self, event: ev.RequestReceived, body: bytes, complete: bool,
                    http_version: str | None = None) -> None:
        self.requests += 1
        self.head_started = None
        self.last_exchange = time.monotonic()
        client_id = None
        for name, value in event.headers:
            if name == "x-request-id":
                client_id = safe_request_id(value)
                break
        request = Request(method=event.method, target=event.target, headers=list(event.headers),
                          http_version=http_version or event.http_version,
                          authority=event.authority, scheme=event.scheme,
                          stream_id=event.stream_id, info=self.info,
                          request_id=client_id or f"{self._rid}{event.stream_id}")
        st = _Stream(request, event.expect_continue)
        st.echo_id = client_id is not None or self._access is not None
        if not complete:  # a body is to come: the app may refuse it first (RFC 9110 §10.1.1)
            if self.conn.multiplexed:
                st.check = True
                expect = request.header("expect")
                st.expect_continue = expect is not None and expect.lower() == "100-continue"
            else:
                st.check = event.expect_continue or request.header("expect") is not None
        if body:
            st.chunks.append(body)
            st.size = len(body)
        st.complete = complete
        request.body_reader = lambda: self._read_body(st)
        task = Task(self, event.stream_id, self._respond(st))
        st.task = task
        self._streams[event.stream_id] = st
        self._runnable.append(task)

    def _wake(self, st: _Stream, force: bool = False) -> None:
        task = st.task
        if task is None or not (task.waiting or force):
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
        metrics = getattr(self.app, "metrics", None)
        if metrics is not None:
            metrics.observe("(protocol)", status, 0.0)

    def _task_failed(self, task: Task) -> None:
        with self.lock:
            st = self._streams.pop(task.stream_id, None)
            if st is not None and self.conn is not None:
                self.conn.reset_stream(task.stream_id, ErrorCode.INTERNAL_ERROR)

    # -- the request coroutine ----------------------------------------------------------------

    async def _read_body(self, st: _Stream) -> bytes:
        while True:
            with self.lock:
                if st.error is not None:
                    raise HTTPError(st.error, "request body too large")
                if st.complete:
                    return b"".join(st.chunks)
                if st.expect_continue and not st.continue_sent:
                    st.continue_sent = True
                    self.conn.send_informational(st.request.stream_id, 100)
                st.task.waiting = True
            await _PARK_AWAIT

    async def _respond(self, st: _Stream) -> None:
        request = st.request
        sid = request.stream_id
        response = None
        if st.error is not None:
            response = Response.text(f"{st.error}\n", status=st.error)
        elif self._gated:
            response = self._gate(request)
        if response is None and st.check:
            check = getattr(self.app, "check_expect", None)
            if check is not None:
                response = check(request)
        refused = response is not None  # answered without the app reading the body
        if response is None:
            response = await self.app.handle(request)
        await self._send_response(st, response)
        with self.lock:
            self._streams.pop(sid, None)
            self.last_activity = self.last_exchange = time.monotonic()
            if not self.conn.multiplexed:
                if not self.conn.closed:
                    self._handle_events(self.conn.next_events())
            elif refused and not st.complete:
                # refused before the body came: ask the client to stop sending it (RFC 9113 §8.1)
                self.conn.reset_stream(sid, ErrorCode.NO_ERROR)
        duration = time.perf_counter() - st.started
        metrics = getattr(self.app, "metrics", None)
        if metrics is not None:
            metrics.observe(request.route or "(unrouted)", st.status, duration)
        if self._access is not None:
            self._access.write(request, st.status, st.sent_bytes, duration)

    def _gate(self, request: Request) -> Response | None:
        """Answers decided by the connection, not the app: 308 to https on the plain port
        (``--redirect-http``), 421 over HTTP/2 + TLS when the certificate does not cover
        ``:authority`` (RFC 9110 §15.5.20, RFC 9113 §9.1.1). ``None`` = go on."""
        if not self.info.tls:
            return self._redirect(request) if self.config.redirect_http else None
        authority = request.authority
        if not authority or not self.conn.multiplexed:
            return None
        cached, ok = self._authority_ok
        if cached != authority:
            ok = cert_covers(self.info.cert_names, host_of(authority))
            self._authority_ok = (authority, ok)
        if ok:
            return None
        return error_response(421, "the connection's certificate does not cover this authority")

    def _redirect(self, request: Request) -> Response:
        """308 Permanent Redirect (RFC 9110 §15.4.9) to the same host and target over https on
        the TLS port; the method and body are to be repeated there."""
        host = host_of(request.authority)
        if not host or not set(host) <= _SAFE_HOST:
            host = self.info.local[0] if self.info.local else self.config.host
        if ":" in host:
            host = f"[{host}]"
        port = self.config.tls_port
        netloc = host if port in (443, None) else f"{host}:{port}"
        target = request.target if request.target.startswith("/") else "/"
        location = f"https://{netloc}{target}"
        return error_response(308, location, [("location", location)])

    async def _send_response(self, st: _Stream, response: Response) -> None:
        request = st.request
        sid = request.stream_id
        body = response.body
        headers = list(response.headers)
        headers.append(("date", http_date()))
        if st.echo_id:
            headers.append(("x-request-id", request.request_id))
        st.status = response.status
        head_only = request.method == "HEAD" or response.status in (204, 304)
        if isinstance(body, (bytes, bytearray)):
            if response.status not in (204, 304) and not any(k == "content-length" for k, _ in headers):
                headers.append(("content-length", str(len(body))))
            with self.lock:
                if head_only or not body:
                    self.conn.send_headers(sid, response.status, headers, end_stream=True)
                    return
                self.conn.send_headers(sid, response.status, headers)
                if len(body) <= self.conn.max_send_size(sid):
                    st.sent_bytes = len(body)
                    self.conn.send_data(sid, bytes(body))
                    self.conn.send_end(sid)
                    return
            await self._send_body(st, bytes(body))
            with self.lock:
                self.conn.send_end(sid)
        elif isinstance(body, FileBody):
            headers.append(("content-length", str(body.count)))
            with self.lock:
                self.conn.send_headers(sid, response.status, headers, end_stream=head_only or not body.count)
            if head_only or not body.count:
                return
            if self.sendfile and not self.conn.multiplexed:
                with self.lock:
                    external = self.conn.send_data_external(sid, body.count)
                if external:
                    await _Suspend(SendFile(path=body.path, offset=body.offset, count=body.count))
                    st.sent_bytes += body.count
                    with self.lock:
                        self.conn.send_end(sid)
                    return
            with open(body.path, "rb") as f:
                f.seek(body.offset)
                left = body.count
                while left > 0:
                    chunk = f.read(min(FILE_CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    await self._send_body(st, chunk)
                    await _FLUSH_AWAIT
            with self.lock:
                self.conn.send_end(sid)
        else:
            with self.lock:
                self.conn.send_headers(sid, response.status, headers, end_stream=head_only)
            if head_only:
                close = getattr(body, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close().send(None)
                return
            async for chunk in body:
                if chunk:
                    await self._send_body(st, chunk)
                    await _FLUSH_AWAIT
            with self.lock:
                self.conn.send_end(sid)

    async def _send_body(self, st: _Stream, data: bytes) -> None:
        sid = st.request.stream_id
        view = memoryview(data)
        while view:
            with self.lock:
                n = self.conn.max_send_size(sid)
                if n > 0:
                    piece = bytes(view[:n])
                    self.conn.send_data(sid, piece)
                    st.sent_bytes += len(piece)
                    st.blocked_since = None
                    view = view[n:]
                    continue
                if st.blocked_since is None:
                    st.blocked_since = time.monotonic()
                st.task.waiting = True
            await _PARK_AWAIT
