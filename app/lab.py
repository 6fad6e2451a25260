"""The lab's application: the static site plus the workload routes every engine is measured on.

Routes (``create_app(www_dir, data_dir)``):

====================================  =========================================================
``GET /``, ``GET /static/{path}``     the site in ``www_dir`` (:mod:`app.static`); any other
                                      unrouted GET/HEAD falls back to a file under ``www_dir``
``POST /``                            200, ``received N bytes`` (h2 conformance testers POST /)
``GET /plaintext``                    ``Hello, World!``, ``text/plain`` (TechEmpower plaintext)
``GET /json``                         ``{"message":"Hello, World!"}`` (TechEmpower json)
``GET /echo/{text}``                  the percent-decoded segment, ``text/plain``
``GET /user-agent``                   the User-Agent (empty when none)
``GET /files/{name}``                 a file of ``data_dir`` (ETag, 304, Range as for static)
``POST|PUT /files/{name}``            store the body: 201 + location when new, 200 when replaced
``GET /io?ms=100``                    wait ``ms`` (0..60000) with ``app.wait``: a slow backend
``GET /cpu?n=50000&shared=0``         ``n`` (0..10_000_000) steps of pure-Python work (``shared=1``: the variant whose constant every thread shares)
``GET /stream?chunks=5&size=1024&ms=0``  a streamed body of ``chunks`` x ``size`` bytes
``GET /sse?count=5&interval_ms=1000``  Server-Sent Events (text/event-stream)
``GET /db``, ``/queries?queries=N``  TechEmpower's database tests on ``app.db`` (app/techempower.py;
``GET /fortunes``, ``/updates?...``   SQLite in ``data_dir`` by default, app/db.py)
``GET /_metrics``                     JSON of :meth:`app.metrics.Metrics.snapshot`
``GET /_health``                      ``ok``
``GET /_conn``                        the request context as JSON: ``request.info`` (peer, TLS
                                      version, ALPN, SNI, engine, connection id, pid) plus
                                      stream id, protocol version, request id, authority
``POST /private``                     ``received N bytes`` with ``authorization: Bearer lab``;
                                      without it the expect check answers 401 before the body
                                      is read (a client sending ``Expect: 100-continue`` never
                                      sends it)
====================================  =========================================================

Virtual host ``demo.localhost`` (``app.host``; ``*.localhost`` resolves to loopback, RFC 6761):
``GET /`` says which host answered, ``GET /_conn`` as above. Every other host name, 127.0.0.1 and
localhost included, is the default host above.

A query parameter that is not a base-10 integer is a 400; one out of range is clamped.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from typing import AsyncIterator

from . import techempower
from .db import DEFAULT_SQLITE, Database, SQLiteBackend
from .effects import wait
from .messages import HTTPError, Request, Response
from .routing import App, Handler, error_response
from .static import StaticFiles, file_response

__all__ = ["create_app", "cpu_work", "cpu_work_shared", "request_context", "DEFAULT_CPU_N", "MAX_CPU_N", "SAFE_NAME",
           "DEMO_HOST", "PRIVATE_AUTHORIZATION"]

log = logging.getLogger("lab.app")

#: Iterations of :func:`cpu_work` for ``GET /cpu`` without ``n``. Measured with
#: ``time.perf_counter``: 10.7 ms median of 21 runs (min 9.5 ms; about 0.21 µs per iteration) on
#: one core of an AMD EPYC (cloud VM), CPython 3.11.7. Scale ``n`` linearly for other sizes.
DEFAULT_CPU_N = 50_000
MAX_CPU_N = 10_000_000
#: A file name ``/files/{name}`` accepts: 1..128 of ``[A-Za-z0-9._-]``, not starting with ``.``.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

#: The demo virtual host (``*.localhost`` names resolve to loopback, RFC 6761 §6.3).
DEMO_HOST = "demo.localhost"
#: What ``POST /private`` wants in ``authorization`` (a demo of the expect check, not security).
PRIVATE_AUTHORIZATION = "Bearer lab"

_PLAIN_HEADERS = [("content-type", "text/plain")]
_PLAIN_BODY = b"Hello, World!"
_JSON_HEADERS = [("content-type", "application/json")]
_JSON_BODY = b'{"message":"Hello, World!"}'
_TEXT = "text/plain; charset=utf-8"


#: bits of :func:`cpu_work`'s accumulator; the mask is made from it on each call (see there)
_CPU_BITS = 32


def cpu_work(n: int) -> int:
    """``n`` steps of a 32-bit multiplicative hash chain, ``acc = (acc * 31 + i) mod 2**32``:
    plain Python bytecode, holds the GIL throughout, about 0.22 µs a step (see DEFAULT_CPU_N).

    The mask ``2**32 - 1`` is made on each call, so it is an object of the calling thread. Written
    as the literal ``0xFFFFFFFF`` (:func:`cpu_work_shared`) it is one constant of the code object,
    shared by every thread: on a free-threaded build (3.14t) threads running /cpu at once then
    contend on that one object's reference count (CPython gh-118527), and two threads run slower
    than one. /cpu measures CPU work, so this form is the default; ``/cpu?shared=1`` runs the
    other, to show that contention (docs/experiments.md). Both return the same value.
    """
    mask = (1 << _CPU_BITS) - 1  # a new int each call: not shared between threads
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & mask
    return acc


def cpu_work_shared(n: int) -> int:
    """:func:`cpu_work` with its mask as a code constant, the one object every thread shares
    (``GET /cpu?shared=1``): the same result, and on a free-threaded build the reference-count
    contention of a shared object (see :func:`cpu_work`)."""
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as an int clamped to ``low..high``.

    Raises:
        HTTPError: 400 when it is present but not a base-10 integer.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not re.fullmatch(r"[+-]?\d{1,18}", raw):
        raise HTTPError(400, f"{name} must be an integer")
    return max(low, min(high, int(raw)))


# -- the handlers: module-level, each testable alone (``await plaintext(request)``) ----------------

async def post_index(request: Request) -> Response:
    """``POST /``: how many bytes were received (h2 conformance testers POST /)."""
    body = await request.body()
    return Response.text(f"received {len(body)} bytes\n")


async def plaintext(request: Request) -> Response:
    """``GET /plaintext``: ``Hello, World!`` (TechEmpower plaintext)."""
    return Response(status=200, headers=list(_PLAIN_HEADERS), body=_PLAIN_BODY)


async def json_(request: Request) -> Response:
    """``GET /json``: ``{"message":"Hello, World!"}`` (TechEmpower json)."""
    return Response(status=200, headers=list(_JSON_HEADERS), body=_JSON_BODY)


async def echo(request: Request) -> Response:
    """``GET /echo/{text}``: the percent-decoded segment."""
    return Response.text(request.path_params["text"])


async def user_agent(request: Request) -> Response:
    """``GET /user-agent``: the User-Agent (empty when none)."""
    return Response.text(request.header("user-agent", "") or "")


async def health(request: Request) -> Response:
    """``GET /_health``: ``ok``."""
    return Response(status=200, headers=[("content-type", _TEXT)], body=b"ok")


async def fail(request: Request) -> Response:
    """``GET /_fail``, fault injection: a handler that raises, to test the 500 path on every engine
    (the router logs it and answers 500; HTTP/2 fails only this stream)."""
    raise RuntimeError("fault injection: GET /_fail")


def _conn_response(request: Request, host: str | None) -> Response:
    resp = Response.json(request_context(request, host))
    resp.headers.append(("cache-control", "no-store"))
    return resp


async def conn(request: Request) -> Response:
    """``GET /_conn``: the request context as JSON (:func:`request_context`)."""
    return _conn_response(request, None)


async def demo_index(request: Request) -> Response:
    """``GET /`` on the demo virtual host: which host answered."""
    return Response.text(f"{DEMO_HOST}: a virtual host of the lab (app.host in app/lab.py)\n")


async def demo_conn(request: Request) -> Response:
    """``GET /_conn`` on the demo virtual host."""
    return _conn_response(request, DEMO_HOST)


def _authorized(request: Request) -> bool:
    return request.header("authorization") == PRIVATE_AUTHORIZATION


def check_body(request: Request) -> Response | None:
    """The expect check: refuse a body before it is read (RFC 9110 §10.1.1): ``POST /private``
    needs ``authorization: Bearer lab``, else 401 and no 100 Continue."""
    if request.path == "/private" and not _authorized(request):
        return error_response(401, "POST /private needs authorization: Bearer lab",
                              [("www-authenticate", 'Bearer realm="lab"')])
    return None


async def private(request: Request) -> Response:
    """``POST /private``: ``received N bytes``, with the authorization.

    Raises:
        HTTPError: 401 without it (a client that sent its body without ``Expect``)."""
    if not _authorized(request):
        raise HTTPError(401, "POST /private needs authorization: Bearer lab",
                        [("www-authenticate", 'Bearer realm="lab"')])
    body = await request.body()
    return Response.text(f"received {len(body)} bytes\n")


async def io(request: Request) -> Response:
    """``GET /io?ms=100``: wait ``ms`` (0..60000) with ``app.effects.wait``: a slow backend."""
    ms = _int_param(request, "ms", 100, 0, 60_000)
    await wait(ms / 1000)
    return Response.text(f"waited {ms} ms\n")


async def cpu(request: Request) -> Response:
    """``GET /cpu?n=50000``: ``n`` (0..10_000_000) steps of :func:`cpu_work`; ``&shared=1``: of
    :func:`cpu_work_shared` (the same result; the variant whose constant all threads share).

    Raises:
        HTTPError: 400 when ``n`` is not an integer or ``shared`` is not 0 or 1.
    """
    n = _int_param(request, "n", DEFAULT_CPU_N, 0, MAX_CPU_N)
    shared = request.query.get("shared", "0")
    if shared not in ("0", "1", ""):
        raise HTTPError(400, "shared must be 0 or 1")
    work = cpu_work_shared if shared == "1" else cpu_work
    return Response.text(f"cpu n={n} result={work(n)}\n")


async def stream(request: Request) -> Response:
    """``GET /stream?chunks=5&size=1024&ms=0``: a streamed body of ``chunks`` x ``size`` bytes,
    ``ms`` between chunks."""
    chunks = _int_param(request, "chunks", 5, 0, 10_000)
    size = _int_param(request, "size", 1024, 1, 1024 * 1024)
    ms = _int_param(request, "ms", 0, 0, 60_000)

    async def body() -> AsyncIterator[bytes]:
        for i in range(chunks):
            if i and ms:
                await wait(ms / 1000)
            yield _chunk(i, size)

    return Response(status=200, headers=[("content-type", _TEXT)], body=body())


async def sse(request: Request) -> Response:
    """``GET /sse?count=5&interval_ms=1000``: Server-Sent Events (text/event-stream)."""
    count = _int_param(request, "count", 5, 0, 1000)
    interval_ms = _int_param(request, "interval_ms", 1000, 0, 60_000)

    async def events() -> AsyncIterator[bytes]:
        for i in range(count):
            if i and interval_ms:
                await wait(interval_ms / 1000)
            yield f'id: {i}\ndata: {{"seq":{i},"of":{count}}}\n\n'.encode()

    return Response(status=200, headers=[("content-type", "text/event-stream"),
                                         ("cache-control", "no-cache")], body=events())


class Site:
    """The handlers that serve the static site in ``www_dir`` (:class:`app.static.StaticFiles`)."""

    def __init__(self, www_dir: str) -> None:
        self.static = StaticFiles(www_dir)

    async def index(self, request: Request) -> Response:
        """``GET /``: the site's index."""
        return self.static.serve(request, "")

    async def static_files(self, request: Request) -> Response:
        """``GET /static/{path}``."""
        return self.static.serve(request, "static/" + request.path_params["path"])

    async def fallback(self, request: Request) -> Response:
        """Any other unrouted GET/HEAD: a file under ``www_dir``."""
        return self.static.serve(request, request.path_params.get("path", ""))


class Files:
    """``/files/{name}``: files of ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)

    def _path(self, request: Request) -> tuple[str, str]:
        name = request.path_params["name"]
        if not SAFE_NAME.fullmatch(name):
            raise HTTPError(400, "name must be 1-128 of [A-Za-z0-9._-], not starting with '.'")
        return name, os.path.join(self.data_dir, name)

    async def get(self, request: Request) -> Response:
        """``GET /files/{name}`` (ETag, 304, Range as for static).

        Raises:
            HTTPError: 400 for a name outside :data:`SAFE_NAME`, 404 when there is no such file."""
        _, path = self._path(request)
        try:
            return file_response(request, path)
        except OSError:
            raise HTTPError(404) from None

    async def put(self, request: Request) -> Response:
        """``POST|PUT /files/{name}``: store the body atomically: a temp file in data_dir, then
        ``os.replace`` (readers see the old or the new file, never half of one; no fsync:
        power-loss durability is not a goal). 201 Created + ``location`` when the name was new,
        200 when it replaced a file.

        Raises:
            HTTPError: 400 for a bad name, 500 when the file cannot be written."""
        name, path = self._path(request)
        body = await request.body()
        existed = os.path.exists(path)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".upload-", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, path)
            tmp = None
        except OSError:
            log.exception("could not store %s", path)
            raise HTTPError(500, "could not store the file") from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        if existed:
            return Response.text(f"replaced {name}: {len(body)} bytes\n", status=200)
        resp = Response.text(f"created {name}: {len(body)} bytes\n", status=201)
        resp.headers.append(("location", f"/files/{name}"))
        return resp


def metrics_handler(app: App) -> Handler:
    """``GET /_metrics`` of ``app``: JSON of :meth:`app.metrics.Metrics.snapshot`."""
    async def metrics(request: Request) -> Response:
        resp = Response.json(app.metrics.snapshot(request.info.engine))
        resp.headers.append(("cache-control", "no-store"))
        return resp
    return metrics


def create_app(www_dir: str, data_dir: str, db: Database | None = None) -> App:
    """The lab's :class:`App`: the routes of the module docstring, wired to the handlers above.

    Args:
        www_dir: the static site's directory. data_dir: where ``/files/{name}`` reads and writes
            (created if missing). db: the database of TechEmpower's routes (app/techempower.py);
            default: SQLite in ``data_dir/lab.sqlite3``, created and seeded on first use.
    """
    app = App()
    app.db = db if db is not None else Database(SQLiteBackend(os.path.join(data_dir, DEFAULT_SQLITE)))
    site, files = Site(www_dir), Files(data_dir)
    app.get("/")(site.index)
    app.post("/")(post_index)
    app.get("/static/{path:path}")(site.static_files)
    app.fallback = site.fallback
    for path, handler in (("/plaintext", plaintext), ("/json", json_), ("/echo/{text}", echo),
                          ("/user-agent", user_agent), ("/_health", health), ("/_fail", fail),
                          ("/_metrics", metrics_handler(app)), ("/_conn", conn), ("/files/{name}", files.get),
                          ("/io", io), ("/cpu", cpu), ("/stream", stream), ("/sse", sse)):
        app.get(path)(handler)
    for path, handler in techempower.routes(app.db):
        app.get(path)(handler)
    app.expect(check_body)
    app.post("/private")(private)
    app.route("/files/{name}", methods=["POST", "PUT"])(files.put)
    demo = app.host(DEMO_HOST)
    demo.get("/")(demo_index)
    demo.get("/_conn")(demo_conn)
    return app


def request_context(request: Request, host: str | None = None) -> dict:
    """What ``GET /_conn`` answers: ``request.info.as_dict()`` plus ``stream_id``,
    ``http_version``, ``request_id``, ``authority``, ``scheme`` and ``vhost`` (the virtual host
    that answered, ``None`` for the default host)."""
    ctx = request.info.as_dict()
    ctx.update(stream_id=request.stream_id, http_version=request.http_version,
               request_id=request.request_id, authority=request.authority, scheme=request.scheme,
               vhost=host)
    return ctx


def _chunk(i: int, size: int) -> bytes:
    """Chunk ``i`` of /stream: exactly ``size`` bytes, ``"chunk 000003 ....\\n"``."""
    head = f"chunk {i:06d} ".encode()
    if size <= len(head):
        return head[:size - 1] + b"\n" if size > 1 else b"\n"
    return head + b"." * (size - len(head) - 1) + b"\n"
