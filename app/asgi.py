"""An ASGI 3 adapter, so that uvicorn and hypercorn serve the lab's own application as peers.

Theory of operation
-------------------
The lab's handlers are ``async def`` coroutines that never touch an event loop: they ``await
app.wait(s)``, which yields an :class:`app.effects.Sleep` effect to whoever drives them. The engines
drive them by hand; so does this adapter, with the server's event loop underneath::

    effect = coro.send(value)        # run the handler until it yields an effect
    Sleep(seconds)      -> await anyio.sleep(seconds), then resume it
    Park                -> await the ASGI ``http.request`` messages, then resume it (the body
                           reader then finds the body read)
    Flush               -> resume it (ASGI's send() already applies backpressure)

Streaming bodies (async iterators of bytes) are drained the same way: each ``__anext__()`` is
itself a coroutine driven by hand, with the same effects. A ``FileBody`` is read from disk in
chunks. ``anyio`` (not ``asyncio``: ``app/`` never imports it, tests/test_layers.py) provides the
sleep, so the adapter runs under asyncio (uvicorn, hypercorn) and trio (``hypercorn -k trio``).

Serve it::

    uvicorn app.asgi:create --factory --port 8000 --no-access-log
    hypercorn 'app.asgi:create()' --bind 127.0.0.1:8000

``create()`` builds ``create_app(www, data_dir)`` from the environment variables ``LAB_WWW`` and
``LAB_DATA_DIR`` (default: the repository's ``www/`` and ``data/``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import quote

import anyio

from .db import DatabaseError, Query
from .effects import FLUSH, PARK, PARK_AWAIT, Sleep
from .messages import ConnectionInfo, FileBody, HTTPError, Request, Response, file_chunks, response_head

__all__ = ["asgi_app", "create", "drive", "DEFAULT_MAX_BODY_SIZE"]

log = logging.getLogger("lab.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024


async def drive(coro: Any, read_body: Callable[[], Awaitable[bytes]] | None = None) -> Any:
    """Run a handler coroutine (or an ``__anext__()`` awaitable) to completion by hand.

    The same effects as the engines' (app/effects.py): ``Sleep`` becomes ``anyio.sleep``;
    ``Park`` (the request body reader waiting for the client) is answered with ``await
    read_body()``, which reads the ASGI ``http.request`` messages; ``Flush`` needs nothing (every
    ``send()`` is awaited). Returns what the coroutine returns.

    Raises:
        whatever the coroutine raises (``StopAsyncIteration`` at the end of an async iterator);
        ``TypeError`` is thrown into it when it yields something that is not a lab effect
        (it awaited a real event-loop object, which lab handlers must not).
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is not None:
                effect, error = coro.throw(error), None
            else:
                effect = coro.send(value)
        except StopIteration as stop:
            return stop.value
        value = None
        if type(effect) is Sleep:
            try:
                await anyio.sleep(effect.seconds)
            except BaseException:  # cancelled: let the handler clean up (its finally blocks)
                _close(coro)
                raise
        elif effect is PARK and read_body is not None:  # the body reader waits for the client
            try:
                await read_body()
            except HTTPError as exc:
                error = exc
        elif effect is FLUSH:  # each ASGI send() already waited for the server to take it
            pass
        elif type(effect) is Query:  # the embedded database: inline, as the lab's engines run it
            try:
                value = effect.db.run(effect)
            except DatabaseError as exc:
                error = exc
        else:
            error = TypeError(f"a lab handler yielded {effect!r}; handlers may only await app.wait()")


def _close(coro: Any) -> None:
    """Close a suspended coroutine, as the engines do on cancellation (``GeneratorExit`` at its
    ``await``). An ``__anext__()`` awaitable is closed by throwing, which reaches the async
    generator's ``finally`` (``close()`` on it would leave the generator marked running)."""
    try:
        coro.throw(GeneratorExit)
    except (GeneratorExit, StopIteration, StopAsyncIteration):
        pass
    except Exception:  # noqa: BLE001 - a handler failing while closed: nothing to tell anyone
        log.debug("closing a handler coroutine failed", exc_info=True)
    else:  # it awaited again while being closed
        coro.close()


class _Body:
    """Reads the ASGI ``http.request`` messages of one request, once, up to ``limit`` bytes."""

    __slots__ = ("receive", "limit", "data", "done", "disconnected")

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.data: bytes | None = None
        self.done = False
        self.disconnected = False

    async def read(self) -> bytes:
        """The whole body (bytes).

        Raises:
            HTTPError: 413 above the limit; 400 when the client went away mid-body.
        """
        if self.data is not None:
            return self.data
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "http.disconnect":
                self.disconnected = True
                self.done = True
                raise HTTPError(400, "client aborted the request body")
            if kind != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise HTTPError(413, "request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.done = True
        self.data = b"".join(chunks)
        return self.data


def _body_reader(body: "_Body") -> Callable[[], Awaitable[bytes]]:
    """``request.body_reader`` for one request: parks until :func:`drive` has read the body
    (the same :data:`PARK` a request body awaits on the engines)."""
    async def read() -> bytes:
        while body.data is None:  # drive() reads it on PARK, or throws its HTTPError in here
            await PARK_AWAIT
        return body.data
    return read


def _request_from_scope(scope: Scope, number: int, engine: str) -> Request:
    raw_path = scope.get("raw_path")
    if raw_path:
        path = raw_path.decode("latin-1")
    else:
        path = quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~")
    query = scope.get("query_string", b"")
    target = f"{path}?{query.decode('latin-1')}" if query else path
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    authority = next((v for k, v in headers if k == "host"), "")
    client = scope.get("client")
    server = scope.get("server")
    info = ConnectionInfo(
        engine=engine,
        peer=(client[0], int(client[1])) if client else None,
        local=(server[0], int(server[1] or 0)) if server else None,
        tls=scope.get("scheme") == "https",
    )
    version = scope.get("http_version", "1.1")
    return Request(method=scope["method"], target=target, headers=headers,
                   http_version="2" if version.startswith("2") else version,
                   authority=authority, scheme=scope.get("scheme", "http"), stream_id=1, info=info,
                   request_id=f"asgi-{number}")


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers]


def _error_response(exc: HTTPError) -> Response:
    response = Response.text(f"{exc.detail or exc.status}\n", status=exc.status)
    response.headers.extend(exc.headers)
    return response


class _Adapter:
    """The ASGI 3 callable returned by :func:`asgi_app`."""

    def __init__(self, app: Any, max_body_size: int, engine: str) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.engine = engine
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        self.requests += 1
        request = _request_from_scope(scope, self.requests, self.engine)
        body = _Body(receive, self.max_body_size)
        request.body_reader = _body_reader(body)
        try:
            response = await drive(self.app.handle(request), body.read)
        except HTTPError as exc:
            response = _error_response(exc)
        except Exception:  # noqa: BLE001 - a handler bug: answer 500, log once
            log.exception("handler failed for %s %s", request.method, request.target)
            response = Response.text("500 Internal Server Error\n", status=500)
        status = response.status
        try:
            await self._send(request, response, body, send)
        finally:
            metrics = getattr(self.app, "metrics", None)
            if metrics is not None:
                metrics.observe(request.route or "(unrouted)", status, time.perf_counter() - started)

    async def _send(self, request: Request, response: Response, body: _Body, send: Send) -> None:
        headers, head_only = response_head(request, response)
        payload = response.body
        if isinstance(payload, (bytes, bytearray)):
            await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
            await send({"type": "http.response.body", "body": b"" if head_only else bytes(payload)})
        elif isinstance(payload, FileBody):
            await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
            if head_only or not payload.count:
                await send({"type": "http.response.body", "body": b""})
                return
            await self._send_file(payload, send)
        else:
            await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
            if head_only:
                await _aclose(payload)
                await send({"type": "http.response.body", "body": b""})
                return
            await self._send_stream(payload, body, send)

    @staticmethod
    async def _send_file(payload: FileBody, send: Send) -> None:
        for chunk in file_chunks(payload):  # RuntimeError if the file shrank under us
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send_stream(iterator: Any, body: _Body, send: Send) -> None:
        """Drain an async iterator of bytes, one ``http.response.body`` per chunk; stop it when
        the client disconnects (a watcher reads ``receive()`` for ``http.disconnect``)."""
        gone = False

        async def watch(scope: anyio.CancelScope) -> None:
            nonlocal gone
            if not body.done:  # an unread request body: discard it, looking for the disconnect
                try:
                    await body.read()
                except HTTPError:
                    pass
            while not body.disconnected:
                message = await body.receive()
                if message["type"] == "http.disconnect":
                    body.disconnected = True
            gone = True
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, tg.cancel_scope)
            try:
                while True:
                    try:
                        chunk = await drive(iterator.__anext__())
                    except StopAsyncIteration:
                        break
                    if chunk:
                        await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
                if not gone:
                    await send({"type": "http.response.body", "body": b""})
            finally:
                with anyio.CancelScope(shield=True):
                    await _aclose(iterator)
                tg.cancel_scope.cancel()


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is None:
        return
    try:
        await drive(close())
    except Exception:  # noqa: BLE001 - a generator failing while closed
        log.debug("closing a response body failed", exc_info=True)


def asgi_app(app: Any, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE, engine: str = "asgi") -> ASGIApp:
    """Wrap the lab's ``app.App`` (``await app.handle(request) -> Response``) as an ASGI 3 app.

    Args:
        app: the application; its optional ``metrics.observe(route, status, seconds)`` is fed
            like the engines feed it.
        max_body_size: request bodies above this (bytes) get 413.
        engine: the name ``request.info.engine`` carries (``/_metrics`` reports it).
    """
    return _Adapter(app, max_body_size, engine)


def create() -> ASGIApp:
    """Factory for ``uvicorn app.asgi:create --factory`` and ``hypercorn 'app.asgi:create()'``:
    the lab's app over ``$LAB_WWW`` (default ``www/``) and ``$LAB_DATA_DIR`` (default ``data/``)."""
    from . import create_app

    www = os.environ.get("LAB_WWW", os.path.join(ROOT, "www"))
    data_dir = os.environ.get("LAB_DATA_DIR", os.path.join(ROOT, "data"))
    return asgi_app(create_app(www, data_dir))
