"""A locust user for the lab over HTTP/2, on the protocol package's own client role.

Usage::

    locust -f loadtest/h2user.py                      # web UI on http://localhost:8089
    locust -f loadtest/h2user.py --headless -u 20 -r 20 -t 10s --workload static
    locust -f loadtest/h2user.py --headless -u 8 -r 8 -t 30s --workload io --h2-streams 16
    locust -f loadtest/h2user.py --host https://127.0.0.1:8443 --workload plaintext   # TLS + ALPN h2

Each user owns one HTTP/2 connection (``protocol.H2ClientConnection``, sans-IO, driven over a gevent
socket) and keeps ``--h2-streams K`` requests in flight on it (default 1: one request at a time, like
a browser tab or the HTTP/1.1 user). ``http://`` hosts get h2c with prior knowledge (RFC 9113 §3.3);
``https://`` hosts get TLS with ALPN ``h2`` (§3.2), certificate verification off (the lab's dev
certificate is self-signed). The workloads, ``--think-ms`` and ``--warmup-s`` are those of
``loadtest/users/workloads.py``, shared with ``h1user.py``.

Theory of operation: a user is a loop of ``step()`` calls (its one locust task). A step starts
requests on the free slots whose think time is over (the slot of a completed request is free again
``--think-ms`` after its response), writes what the connection has to send, reads once from the
socket (with a timeout that ends when the next slot's think time does), feeds the bytes to the
connection and handles the events: ``MessageComplete`` fires locust's ``request`` event with the
response time (ms, from the write of the request to the end of its response) and the body length
(octets); a status other than 2xx/304, a ``StreamReset`` or a connection error fire it with an
exception, so they count as failures. A connection that ends (EOF, GOAWAY, error) fails the requests
it still carries (except those a graceful GOAWAY lets finish) and is replaced on the next step. A stream
the server refused unprocessed (RST_STREAM / GOAWAY with REFUSED_STREAM, §8.7) is sent again, not
counted. A connection idle for more than a second (think time) is read first, so that a GOAWAY sent by
the server's keep-alive timeout is seen before a request is written to a closing connection.

Open loop (``--rate R``, ``loadtest/users/openloop.py``): the slots and think time are not used; a step
adds the requests whose intended send time has come to a backlog and starts as many as the
connection has streams for (the server's SETTINGS_MAX_CONCURRENT_STREAMS), so many streams are in
flight at once (the peak is reported). A request's response time runs from its intended send time;
one that waited in the backlog for a stream, or was sent more than ``LATE_S`` behind, counts as
late. Requests the connection carried when it broke are failures; the backlog goes on the next
connection; when no connection can be made, the backlog's requests fail, one each.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from urllib.parse import urlsplit

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/h2user.py``: make the lab importable
    sys.path.insert(0, _ROOT)

import gevent  # noqa: E402
from gevent import socket as gsocket  # noqa: E402
from gevent import ssl as gssl  # noqa: E402
from locust import User, events, task  # noqa: E402

import loadtest.users.hooks  # noqa: E402,F401  (--workload, --think-ms, --warmup-s, --measure-s, --rate)
from loadtest.users.openloop import LATE_S, RECORDER, Schedule, rate_per_user  # noqa: E402
from loadtest.users.workloads import Workload, is_success, think_seconds, workload_name  # noqa: E402
from protocol import events as ev  # noqa: E402
from protocol.h2_client import H2ClientConnection  # noqa: E402

__all__ = ["H2User", "H2Error", "client_tls_context"]

HEADERS = (("user-agent", "lab-h2user/1"),)
IDLE_CHECK_S = 1.0  # s without socket I/O after which a step first reads what the server may have sent
REFUSED_STREAM = 0x7  # RFC 9113 §7: the stream was not processed; safe to send again
RECV_SIZE = 256 * 1024


class H2Error(Exception):
    """A request that failed: an unexpected status, a reset stream or a broken connection."""


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument("--h2-streams", type=int, default=1, include_in_web_ui=True,
                        help="HTTP/2 user: requests in flight per user, on its one connection (default: 1)")


def client_tls_context() -> gssl.SSLContext:
    """A TLS client context offering only ``h2`` by ALPN, with certificate checks off (dev cert)."""
    ctx = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = gssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


class _Request:
    __slots__ = ("path", "name", "start", "status", "length")

    def __init__(self, path: str, name: str, start: float) -> None:
        self.path = path
        self.name = name
        self.start = start
        self.status = 0
        self.length = 0


class H2User(User):
    """One simulated HTTP/2 client: one connection, ``--h2-streams`` requests in flight, the
    ``--workload`` of ``loadtest/users/workloads.py``, ``--think-ms`` between a slot's requests."""

    host = "http://127.0.0.1:8080"
    _tls: gssl.SSLContext | None = None

    def wait_time(self) -> float:  # think time is per stream slot, inside step()
        return 0.0

    # -- lifecycle ----------------------------------------------------------------------------

    def on_start(self) -> None:
        url = urlsplit(self.host or H2User.host)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"H2User needs an http:// or https:// host, not {self.host!r}")
        self.scheme = url.scheme
        self.address = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
        self.authority = url.netloc
        options = self.environment.parsed_options
        self.streams = max(1, int(getattr(options, "h2_streams", 1) or 1)) if options is not None else 1
        self.think = think_seconds(self.environment)
        self.workload = Workload(workload_name(self.environment))
        self.sock = None
        self.conn: H2ClientConnection | None = None
        self.inflight: dict[int, _Request] = {}
        self.free: list[float] = [0.0] * self.streams  # when each free slot may start a request
        self._timeout: float | None = -1.0
        self.last_io = 0.0
        rate = rate_per_user(self.environment)
        poisson = options is not None and getattr(options, "arrival", "fixed") == "poisson"
        self.schedule = Schedule(rate, poisson) if rate > 0 else None
        self.backlog: collections.deque[float] = collections.deque()  # intended send times
        if self.workload.needs_index:  # as a browser would: the page, then what it links
            page = self._fetch_once("/", "/")
            if page:
                self.workload.set_index(page.decode("utf-8", "replace"))

    def on_stop(self) -> None:
        self._close()

    @task
    def step(self) -> None:
        """Start what may start, read once, report what completed (see the module docstring)."""
        if self.schedule is not None:
            self.open_step()
            return
        now = time.perf_counter()
        if self.conn is not None and not self.inflight:
            if now - self.last_io > IDLE_CHECK_S:  # idle a while: the server may have said GOAWAY meanwhile
                self._read(0.0)
            if self.conn is not None and (self.conn.closed or not self.conn.available_streams):
                self._close()  # over (GOAWAY, stream ids used up): a new connection
        if self.conn is None and not self._connect():
            return
        conn = self.conn
        free = self.free
        if free and conn.available_streams:
            ready = [t for t in free if t <= now]
            if ready:
                n = min(len(ready), conn.available_streams)
                for _ in range(n):
                    free.remove(ready.pop())
                    path, name = self.workload.next()
                    sid = conn.send_request("GET", path, self.authority, self.scheme, HEADERS)
                    self.inflight[sid] = _Request(path, name, now)
        if not self._flush():
            return
        if not self.inflight:  # every slot is thinking
            gevent.sleep(max(0.0, min(free) - now) if free else 0.0)
            return
        self._read(max(0.0, min(free) - now) if free else None)

    def open_step(self) -> None:
        """Open loop: queue what is due, start what the streams allow, read until the next is due."""
        now = time.perf_counter()
        backlog = self.backlog
        backlog.extend(self.schedule.due(now))
        if self.conn is not None and not self.inflight:
            if now - self.last_io > IDLE_CHECK_S:
                self._read(0.0)
            if self.conn is not None and (self.conn.closed or not self.conn.available_streams):
                self._close()
        if self.conn is None and not self._connect():
            while backlog:  # no connection: each request due fails, none is dropped
                path, name = self.workload.next()
                self._report(name, path, (now - backlog.popleft()) * 1000.0, 0, H2Error("cannot connect"))
            gevent.sleep(max(0.0, self.schedule.next - time.perf_counter()))
            return
        conn = self.conn
        while backlog and conn.available_streams:
            intended = backlog.popleft()
            if now - intended > LATE_S:
                RECORDER.late += 1
            path, name = self.workload.next()
            sid = conn.send_request("GET", path, self.authority, self.scheme, HEADERS)
            self.inflight[sid] = _Request(path, name, intended)
        RECORDER.peak(streams=len(self.inflight))
        if not self._flush():
            return
        wait = max(0.0, self.schedule.next - time.perf_counter())
        if not self.inflight:
            gevent.sleep(wait)
        else:  # a backlog waiting for streams: block until a response frees one
            self._read(None if backlog else wait)

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> bool:
        t0 = time.perf_counter()
        try:
            sock = gsocket.create_connection(self.address, timeout=10)
            sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if H2User._tls is None:
                    H2User._tls = client_tls_context()
                try:
                    sock = H2User._tls.wrap_socket(sock, server_hostname=self.address[0])
                except BaseException:
                    sock.close()
                    raise
                if sock.selected_alpn_protocol() != "h2":
                    sock.close()
                    raise H2Error(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
            sock.settimeout(None)
        except (OSError, H2Error) as exc:
            path, name = self.workload.next()
            self._report(name, path, (time.perf_counter() - t0) * 1000.0, 0, exc)
            return False
        self.sock = sock
        self._timeout = None
        self.last_io = time.perf_counter()
        self.conn = H2ClientConnection()
        return True

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.conn = None
        if self.schedule is None:
            for _ in range(len(self.inflight)):
                self.free.append(0.0)
        self.inflight.clear()

    def _broken(self, exc: Exception) -> None:
        """Fail every request in flight with ``exc`` and drop the connection."""
        now = time.perf_counter()
        for r in self.inflight.values():
            self._report(r.name, r.path, (now - r.start) * 1000.0, r.length, exc)
        self._close()

    def _flush(self) -> bool:
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._broken(H2Error(f"send failed: {exc!r}"))
                return False
        return True

    def _read(self, timeout: float | None) -> None:
        sock = self.sock
        if timeout != self._timeout:
            sock.settimeout(timeout)
            self._timeout = timeout
        try:
            data = sock.recv(RECV_SIZE)
        except (gsocket.timeout, BlockingIOError):  # (timeout 0.0 is non-blocking mode: EAGAIN)
            if timeout == 0.0:
                self.last_io = time.perf_counter()
            return
        except OSError as exc:
            self._broken(H2Error(f"receive failed: {exc!r}"))
            return
        self.last_io = time.perf_counter()
        conn = self.conn
        for e in conn.receive_data(data):
            self._on_event(e)
        if self.conn is None:
            return
        if not self._flush():
            return
        if conn.closed:  # over: what it still carries failed; the next step reconnects
            if self.inflight:
                self._broken(H2Error("connection closed"))
            else:
                self._close()

    def _on_event(self, e: ev.Event) -> None:
        t = type(e)
        if t is ev.DataReceived:
            r = self.inflight.get(e.stream_id)
            if r is not None:
                r.length += len(e.data)
        elif t is ev.ResponseReceived:
            r = self.inflight.get(e.stream_id)
            if r is not None:
                r.status = e.status
        elif t is ev.MessageComplete:
            r = self.inflight.pop(e.stream_id, None)
            if r is not None:
                now = time.perf_counter()
                if self.schedule is None:
                    self.free.append(now + self.think)
                exc = None if is_success(r.status) else H2Error(f"HTTP {r.status}")
                self._report(r.name, r.path, (now - r.start) * 1000.0, r.length, exc)
        elif t is ev.StreamReset:
            r = self.inflight.pop(e.stream_id, None)
            if r is not None:
                now = time.perf_counter()
                if e.error_code == REFUSED_STREAM and e.remote:  # not processed (§8.7): sent again, not a failure
                    if self.schedule is None:
                        self.free.append(now)
                    else:
                        self.backlog.appendleft(r.start)
                    return
                if self.schedule is None:
                    self.free.append(now + self.think)
                self._report(r.name, r.path, (now - r.start) * 1000.0, r.length,
                             H2Error(f"stream reset, error code {e.error_code}"))
        elif t is ev.ConnectionTerminated:
            if e.error_code or not e.remote or e.last_stream_id is None:
                self._broken(H2Error(f"connection ended: {e.reason} (error code {e.error_code})"))

    def _report(self, name: str, path: str, ms: float, length: int, exc: Exception | None) -> None:
        self.environment.events.request.fire(request_type="GET", name=name, response_time=ms,
                                             response_length=length, response=None, context={},
                                             exception=exc, url=path)

    def _fetch_once(self, path: str, name: str) -> bytes | None:
        """One request on the user's connection, waited for (the index page); returns the body of
        a 200 response, else None (the failure is reported)."""
        if self.conn is None and not self._connect():
            return None
        self.free.pop()
        sid = self.conn.send_request("GET", path, self.authority, self.scheme, HEADERS)
        req = _Request(path, name, time.perf_counter())
        self.inflight[sid] = req
        body: list[bytes] = []
        conn = self.conn
        if not self._flush():
            return None
        status = 0
        while self.conn is conn and sid in self.inflight:
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError as exc:
                self._broken(H2Error(f"receive failed: {exc!r}"))
                return None
            for e in conn.receive_data(data):
                if type(e) is ev.DataReceived and e.stream_id == sid:
                    body.append(e.data)
                elif type(e) is ev.ResponseReceived and e.stream_id == sid:
                    status = e.status
                self._on_event(e)
                if self.conn is None:
                    return None
            if not data:
                self._broken(H2Error("connection closed"))
                return None
            if not self._flush():
                return None
        return b"".join(body) if status == 200 else None
