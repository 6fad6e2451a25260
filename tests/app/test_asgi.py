"""The ASGI adapter (app/asgi.py), driven in-process with a fake receive/send: no sockets.

A small fake application stands in for ``app.App`` (only ``handle`` and ``metrics`` are used), so
these tests pin the adapter's contract without depending on the router.
"""

from __future__ import annotations

import asyncio

import pytest

from app import asgi as asgi_module
from app.asgi import asgi_app, drive
from app.effects import wait
from app.messages import FileBody, HTTPError, Request, Response


class Metrics:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.seen.append((route, status))


class FakeApp:
    """Routes by path; every handler is an engine-neutral coroutine like the lab's."""

    def __init__(self, tmp_path) -> None:
        self.metrics = Metrics()
        self.tmp_path = tmp_path
        self.requests: list[Request] = []
        self.closed_streams = 0

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        request.route = request.path
        path = request.path
        if path == "/plaintext":
            return Response.text("Hello, World!")
        if path == "/io":
            await wait(float(request.query.get("ms", "0")) / 1000)
            return Response.text("waited")
        if path == "/echo-body":
            return Response(headers=[("content-type", "application/octet-stream")], body=await request.body())
        if path == "/stream":
            return Response(body=self._stream(int(request.query.get("n", "3"))))
        if path == "/forever":
            return Response(body=self._forever())
        if path == "/file":
            f = self.tmp_path / "f.txt"
            f.write_bytes(b"0123456789" * 100_000)
            return Response(headers=[("content-type", "text/plain")],
                            body=FileBody(path=str(f), offset=int(request.query.get("offset", "0")),
                                          count=int(request.query.get("count", "1000000"))))
        if path == "/teapot":
            raise HTTPError(418, "short and stout", [("x-kind", "teapot")])
        if path == "/bug":
            raise ZeroDivisionError("oops")
        if path == "/asyncio":
            await asyncio.sleep(0)  # forbidden in lab handlers: the adapter must refuse it
            return Response.text("unreachable")
        raise HTTPError(404, "not found")

    async def _stream(self, n: int):
        for i in range(n):
            await wait(0.001)
            yield f"chunk {i}\n".encode()

    async def _forever(self):
        try:
            while True:
                await wait(0.01)
                yield b"data: tick\n\n"
        finally:
            self.closed_streams += 1


def scope(path: str, method: str = "GET", query: bytes = b"", headers=()) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }


async def call(application, sc: dict, body_parts=(b"",), disconnect_after: float | None = None):
    """Run one request; returns (status, headers dict, body bytes, list of body messages)."""
    incoming = [{"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
                for i, part in enumerate(body_parts)]
    sent: list[dict] = []
    disconnected = asyncio.Event()

    async def receive():
        if incoming:
            return incoming.pop(0)
        if disconnect_after is not None:
            await asyncio.sleep(disconnect_after)
            disconnected.set()
        else:
            await asyncio.Event().wait()  # never: the client stays
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(application(sc, receive, send), 5)
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in bodies)
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in bodies), bodies


@pytest.fixture
def fake(tmp_path):
    return FakeApp(tmp_path)


def test_plaintext_one_body_message(fake):
    status, headers, body, bodies = asyncio.run(call(asgi_app(fake), scope("/plaintext")))
    assert (status, body) == (200, b"Hello, World!")
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-length"] == "13"
    assert len(bodies) == 1 and not bodies[0].get("more_body", False)
    assert fake.metrics.seen == [("/plaintext", 200)]


def test_request_fields_from_scope(fake):
    sc = scope("/plaintext", query=b"a=1&b=%20", headers=[(b"User-Agent", b"t/1")])
    asyncio.run(call(asgi_app(fake), sc))
    req = fake.requests[0]
    assert req.method == "GET" and req.target == "/plaintext?a=1&b=%20"
    assert req.path == "/plaintext" and req.query == {"a": "1", "b": " "}
    assert req.header("user-agent") == "t/1" and req.authority == "testserver"
    assert req.info.peer == ("127.0.0.1", 5000) and req.info.local == ("127.0.0.1", 8000)


def test_sleep_effect_waits_without_blocking_the_loop(fake, monkeypatch):
    """20 concurrent /io?ms=100 requests are all asleep at once (the adapter awaits the server
    loop's sleep, never blocks it): the fake sleep releases them only when all 20 are inside."""
    inside: list[float] = []
    all_in = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        inside.append(seconds)
        if len(inside) == 20:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 10)  # a blocking adapter would never get here 20x

    monkeypatch.setattr(asgi_module.anyio, "sleep", fake_sleep)
    application = asgi_app(fake)

    async def many():
        return await asyncio.gather(*(call(application, scope("/io", query=b"ms=100")) for _ in range(20)))

    results = asyncio.run(many())
    assert all(r[0] == 200 and r[2] == b"waited" for r in results)
    assert inside == [0.1] * 20


def test_request_body_from_several_messages(fake):
    status, _, body, _ = asyncio.run(call(asgi_app(fake), scope("/echo-body", "POST"),
                                          body_parts=(b"abc", b"", b"def")))
    assert (status, body) == (200, b"abcdef")


def test_request_body_over_the_limit_is_413(fake):
    application = asgi_app(fake, max_body_size=4)
    status, _, body, _ = asyncio.run(call(application, scope("/echo-body", "POST"), body_parts=(b"abc", b"de")))
    assert status == 413


def test_streamed_body_one_message_per_chunk(fake):
    status, headers, body, bodies = asyncio.run(call(asgi_app(fake), scope("/stream", query=b"n=3")))
    assert status == 200 and "content-length" not in headers
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert [m.get("more_body", False) for m in bodies] == [True, True, True, False]


def test_endless_stream_stops_when_the_client_disconnects(fake):
    status, _, body, _ = asyncio.run(call(asgi_app(fake), scope("/forever"), disconnect_after=0.05))
    assert status == 200 and body.startswith(b"data: tick\n\n")
    assert fake.closed_streams == 1  # the generator's finally ran


def test_file_body_read_from_disk(fake):
    status, headers, body, bodies = asyncio.run(call(asgi_app(fake), scope("/file")))
    assert status == 200 and headers["content-length"] == "1000000"
    assert body == b"0123456789" * 100_000 and len(bodies) > 1
    status, headers, body, _ = asyncio.run(call(asgi_app(fake), scope("/file", query=b"offset=3&count=4")))
    assert (headers["content-length"], body) == ("4", b"3456")


def test_head_sends_no_body(fake):
    status, headers, body, _ = asyncio.run(call(asgi_app(fake), scope("/plaintext", "HEAD")))
    assert (status, headers["content-length"], body) == (200, "13", b"")
    status, headers, body, _ = asyncio.run(call(asgi_app(fake), scope("/file", "HEAD")))
    assert (status, headers["content-length"], body) == (200, "1000000", b"")


def test_http_error_and_handler_bug(fake):
    status, headers, body, _ = asyncio.run(call(asgi_app(fake), scope("/teapot")))
    assert (status, headers["x-kind"]) == (418, "teapot") and b"short and stout" in body
    status, _, _, _ = asyncio.run(call(asgi_app(fake), scope("/bug")))
    assert status == 500
    assert fake.metrics.seen[-2:] == [("/teapot", 418), ("/bug", 500)]


def test_awaiting_an_event_loop_object_is_refused(fake):
    status, _, _, _ = asyncio.run(call(asgi_app(fake), scope("/asyncio")))
    assert status == 500


def test_lifespan():
    sent = []
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive():
        return incoming.pop(0)

    async def send(m):
        sent.append(m["type"])

    asyncio.run(asgi_app(object())({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_drive_returns_value_and_propagates_stop_async_iteration():
    async def f():
        await wait(0)
        return 42

    async def empty():
        return
        yield  # pragma: no cover

    assert asyncio.run(drive(f())) == 42
    with pytest.raises(StopAsyncIteration):
        asyncio.run(drive(empty().__anext__()))


def test_factory_builds_the_lab_app(monkeypatch, tmp_path):
    import app

    if not hasattr(app, "create_app"):
        pytest.skip("app.create_app is not there yet")
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path))
    application = asgi_module.create()
    status, headers, body, _ = asyncio.run(call(application, scope("/plaintext")))
    assert (status, body) == (200, b"Hello, World!")
    assert headers["content-type"].startswith("text/plain")
