"""One request/response exchange of a session (the seam hypercorn calls HTTPStream): the gates
decided before the app runs, reading the request body, and writing the response.

Serving features (docs/serving.md), decided here once for every engine and both
protocols, before the app runs: ``--redirect-http`` (308 on the plain port) and 421 over HTTP/2 +
TLS for an ``:authority`` the connection's certificate does not cover (``_gate``); the app's
expect check (``app.check_expect``) for a request whose body is still to come (HTTP/1.1 with
``Expect``, every such HTTP/2 stream; an HTTP/2 refusal ends with RST_STREAM(NO_ERROR)). The
request's lifetime metrics and access log line are written when its answer is complete.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from app.effects import FLUSH_AWAIT, PARK_AWAIT, suspend
from app.hosts import cert_covers, host_of
from app.messages import FileBody, HTTPError, Request, Response, file_chunks, response_head
from app.routing import error_response
from protocol.errors import WindowExceeded

from .tasks import SendFile, Task, http_date

__all__ = ["Exchange"]
_SAFE_HOST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:")


async def _no_body() -> bytes:
    """A request's body reader once its exchange is over: nothing more to read."""
    return b""


class Exchange(Task):
    """One request in flight on a :class:`Session` and the task answering it (a :class:`Task`
    whose coroutine is :meth:`respond`): the Request, its body as it arrives; the gates decided
    before the app runs (308, 421, the expect check), the body reader the handler awaits, and the
    writers of the three body kinds (bytes, a file, an async iterator), under the session's lock
    and HTTP/2 flow control. One object a request, not two: the engines step it as a task."""

    __slots__ = ("request", "chunks", "size", "complete", "error", "expect_continue", "continue_sent",
                 "started", "opened", "status", "sent_bytes", "check", "echo_id", "blocked_since")

    def __init__(self, session: Any, stream_id: int, expect_continue: bool) -> None:
        # Task.__init__'s fields, stored here: one call fewer a request, about 1 % of what a request
        # costs the shared code (python -m loadtest.sessionbench --instructions); the coroutine,
        # respond(), is set by the session.
        self.session = session
        self.stream_id = stream_id
        self.coro = None
        self.cancelled = False
        self.parked = False
        self.woken = False
        self.waiting = False
        self.wakeup = None
        self.reply = None
        self.thrown = None
        self.request: Request = None  # type: ignore[assignment]  # set by the session next
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.error: int | None = None
        self.expect_continue = expect_continue
        self.continue_sent = False
        self.started = time.perf_counter()
        self.opened = session.last_activity  # the body's deadline counts from here (body_timeout)
        self.status = 0
        self.sent_bytes = 0
        self.check = False    # ask app.check_expect before the body is read
        self.echo_id = False  # send X-Request-Id
        self.blocked_since: float | None = None  # HTTP/2: waiting for a window since (monotonic)

    async def read_body(self) -> bytes:
        """The request body (what ``request.body()`` awaits): parks until it is complete; sends
        100 Continue first when the client asked for it.

        Raises:
            HTTPError: 413 when the body passed ``--max-body-size``.
        """
        ses = self.session
        while True:
            with ses.lock:
                if self.error is not None:
                    raise HTTPError(self.error, "request body too large")
                if self.complete:
                    return b"".join(self.chunks)
                if self.expect_continue and not self.continue_sent:
                    self.continue_sent = True
                    ses.conn.send_informational(self.request.stream_id, 100)
                self.waiting = True
            await PARK_AWAIT

    async def respond(self) -> None:
        """The task's coroutine: the gates, else the app; the response; then the bookkeeping
        (the stream forgotten, pipelined requests released, metrics and the access log)."""
        ses = self.session
        request = self.request
        if self.error is None and not self.check and not ses.gated:  # the common case, tested once
            response = await ses.app.handle(request)
            refused = False
        else:
            response = self._decided(request)
            refused = response is not None  # answered without the app reading the body
            if response is None:
                response = await ses.app.handle(request)
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            rest = self._send_bytes(response, bytes(body))
            if rest:  # beyond the flow-control window: sent as the window opens
                await self._send_body(rest)
                with ses.lock:
                    ses.conn.send_end(request.stream_id)
        else:
            await self._send_response(response)
        with ses.lock:
            conn = ses.conn
            ses.finished(request.stream_id)
            ses.last_activity = ses.last_exchange = time.monotonic()
            ses.glue.after_exchange(ses, conn, request, refused, self.complete)
        duration = time.perf_counter() - self.started
        metrics = ses.metrics
        if metrics is not None:
            metrics.observe(request.route or "(unrouted)", self.status, duration)
        if ses.access_log is not None:
            ses.access_log.write(request, self.status, self.sent_bytes, duration)
        # The request's body reader is this exchange's bound method: a reference cycle that only
        # the cyclic GC would free. Broken here, the exchange, its request and its task are
        # freed as soon as the engine lets go of the task.
        request.body_reader = _no_body

    def _decided(self, request: Request) -> Response | None:
        """The answer decided before the app runs, if any: 413 (a body past the limit), the
        gates (``_gate``), the app's expect check; ``None`` = run the app."""
        ses = self.session
        if self.error is not None:
            return Response.text(f"{self.error}\n", status=self.error)
        response = self._gate(request) if ses.gated else None
        if response is None and self.check:
            check = getattr(ses.app, "check_expect", None)
            if check is not None:
                response = check(request)
        return response

    def _gate(self, request: Request) -> Response | None:
        """Answers decided by the connection, not the app: 308 to https on the plain port
        (``--redirect-http``), 421 over HTTP/2 + TLS when the certificate does not cover
        ``:authority`` (RFC 9110 §15.5.20, RFC 9113 §9.1.1). ``None`` = go on."""
        ses = self.session
        if not ses.info.tls:
            return self._redirect(request) if ses.config.redirect_http else None
        authority = request.authority
        if not authority or not ses.glue.checks_authority:
            return None
        cached, ok = ses.authority_ok
        if cached != authority:
            ok = cert_covers(ses.info.cert_names, host_of(authority))
            ses.authority_ok = (authority, ok)
        if ok:
            return None
        return error_response(421, "the connection's certificate does not cover this authority")

    def _redirect(self, request: Request) -> Response:
        """308 Permanent Redirect (RFC 9110 §15.4.9) to the same host and target over https on
        the TLS port; the method and body are to be repeated there."""
        ses = self.session
        host = host_of(request.authority)
        if not host or not set(host) <= _SAFE_HOST:
            host = ses.info.local[0] if ses.info.local else ses.config.host
        if ":" in host:
            host = f"[{host}]"
        port = ses.config.tls_port
        netloc = host if port in (443, None) else f"{host}:{port}"
        target = request.target if request.target.startswith("/") else "/"
        location = f"https://{netloc}{target}"
        return error_response(308, location, [("location", location)])

    def _head_fields(self, response: Response) -> tuple[list[tuple[str, str]], bool]:
        """``response_head`` plus the fields the server adds: ``date`` and ``x-request-id``."""
        headers, head_only = response_head(self.request, response)
        headers.append(("date", http_date()))
        if self.echo_id:
            headers.append(("x-request-id", self.request.request_id))
        self.status = response.status
        return headers, head_only

    def _send_bytes(self, response: Response, body: bytes) -> bytes:
        """Send a response with a bytes body: whole, in one ``send_response``, when the
        flow-control window takes it (returns ``b""``); else only the head, and returns the body
        for ``_send_body`` and ``send_end``."""
        ses = self.session
        request = self.request
        headers, head_only = response_head(request, response)  # _head_fields, inlined: the hot path
        headers.append(("date", http_date()))
        if self.echo_id:
            headers.append(("x-request-id", request.request_id))
        self.status = status = response.status
        sid = request.stream_id
        with ses.lock:
            conn = ses.conn
            if head_only:
                conn.send_response(sid, status, headers, b"")
                return b""
            try:
                conn.send_response(sid, status, headers, body)
            except WindowExceeded:  # HTTP/2: the body is larger than the window; the head alone now
                conn.send_headers(sid, status, headers)
                return body
            self.sent_bytes = len(body)
        return b""

    async def _send_response(self, response: Response) -> None:
        """Send a response whose body is a file (``FileBody``) or an async iterator of bytes."""
        ses = self.session
        sid = self.request.stream_id
        body = response.body
        headers, head_only = self._head_fields(response)
        if isinstance(body, FileBody):
            with ses.lock:
                ses.conn.send_headers(sid, response.status, headers, end_stream=head_only or not body.count)
            if head_only or not body.count:
                return
            if ses.sendfile and ses.glue.sendfile:
                with ses.lock:
                    external = ses.glue.send_external(ses.conn, sid, body.count)
                if external:
                    await suspend(SendFile(path=body.path, offset=body.offset, count=body.count))
                    self.sent_bytes += body.count
                    with ses.lock:
                        ses.conn.send_end(sid)
                    return
            for chunk in file_chunks(body):
                await self._send_body(chunk)
                await FLUSH_AWAIT
            with ses.lock:
                ses.conn.send_end(sid)
        else:
            with ses.lock:
                ses.conn.send_headers(sid, response.status, headers, end_stream=head_only)
            if head_only:
                close = getattr(body, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close().send(None)
                return
            async for chunk in body:
                if chunk:
                    await self._send_body(chunk)
                    await FLUSH_AWAIT
            with ses.lock:
                ses.conn.send_end(sid)

    async def _send_body(self, data: bytes) -> None:
        ses = self.session
        sid = self.request.stream_id
        view = memoryview(data)
        while view:
            with ses.lock:
                n = ses.conn.max_send_size(sid)
                if n > 0:
                    piece = bytes(view[:n])
                    ses.conn.send_data(sid, piece)
                    self.sent_bytes += len(piece)
                    self.blocked_since = None
                    view = view[n:]
                    continue
                if self.blocked_since is None:
                    self.blocked_since = time.monotonic()
                self.waiting = True
            await PARK_AWAIT
