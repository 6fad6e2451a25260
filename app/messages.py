"""Requests and responses as the application sees them: no sockets, no protocol framing.

A :class:`Request` is built by the engines' shared glue (``engines/session.py``) from a protocol
``RequestReceived`` event; its body arrives later and is read with ``await request.body()``. A
:class:`Response` body is ``bytes``, an async iterator of ``bytes`` (streamed: chunked over HTTP/1.1,
DATA frames over HTTP/2), or a :class:`FileBody` (sent with ``socket.sendfile`` where the engine can).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Union
from urllib.parse import parse_qsl

__all__ = ["ConnectionInfo", "Request", "new_request", "Response", "FileBody", "Body", "HTTPError", "response_head",
           "file_chunks", "FILE_CHUNK"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionInfo:
    """Facts about the connection a request came on (the request context, no globals).

    Attributes:
        connection_id: a per-process counter of accepted connections.
        engine: the engine's name (``"selectors"``, ...).
        peer: the client's ``(host, port)``; ``None`` when unknown.
        local: the listening ``(host, port)``.
        tls: true over TLS.
        tls_version: the TLS version negotiated (``"TLSv1.3"``), or ``None``.
        alpn: the ALPN protocol chosen (``"h2"``, ``"http/1.1"``) or ``None``.
        sni: the TLS server name the client asked for (RFC 6066 §3), or ``None``.
        cert_names: the DNS and IP names the certificate sent on this connection covers
            (chosen by SNI); ``()`` over plain TCP. HTTP/2 answers 421 to other authorities.
        pid: the serving process (processpool: the worker); 0 when unknown.
    """

    connection_id: int = 0
    engine: str = ""
    peer: tuple[str, int] | None = None
    local: tuple[str, int] | None = None
    tls: bool = False
    alpn: str | None = None
    sni: str | None = None
    tls_version: str | None = None
    cert_names: tuple[str, ...] = ()
    pid: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The facts as JSON-ready values: ``{"connection_id": 3, "engine": "selectors",
        "peer": ["127.0.0.1", 50000], ..., "pid": 1234}`` (tuples become lists)."""
        return {"connection_id": self.connection_id, "engine": self.engine,
                "peer": list(self.peer) if self.peer else None,
                "local": list(self.local) if self.local else None,
                "tls": self.tls, "tls_version": self.tls_version, "alpn": self.alpn,
                "sni": self.sni, "cert_names": list(self.cert_names), "pid": self.pid}


@dataclass(frozen=True, kw_only=True, slots=True)
class FileBody:
    """A response body read from a file: ``count`` bytes from ``offset`` of ``path``."""

    path: str
    offset: int
    count: int


Body = Union[bytes, AsyncIterator[bytes], FileBody]


class HTTPError(Exception):
    """Raised by a handler to answer with ``status`` (and an optional plain-text ``detail``)."""

    def __init__(self, status: int, detail: str = "", headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail
        self.headers = headers or []


async def _empty_body() -> bytes:
    return b""


@dataclass(kw_only=True, slots=True, eq=False)
class Request:
    """One HTTP request.

    Attributes:
        method: e.g. ``"GET"``.
        target: the request target as sent (``/path?query``).
        path: the target's path, still percent-encoded.
        query_string: the part after ``?`` (``""`` if none).
        headers: ``[(name, value)]`` with lowercase names, in order received.
        http_version: ``"1.0"``, ``"1.1"`` or ``"2"``.
        authority: Host / ``:authority``; scheme: ``"http"`` or ``"https"``.
        stream_id: the HTTP/2 stream id (HTTP/1.x: the exchange number).
        info: the :class:`ConnectionInfo` of the connection.
        path_params: filled by the router from ``{name}`` segments (percent-decoded).
        route: the route pattern that matched (for metrics), ``None`` before routing.
        request_id: a unique id for logs and the ``X-Request-Id`` header.
    """

    method: str
    target: str
    headers: list[tuple[str, str]]
    http_version: str = "1.1"
    authority: str = ""
    scheme: str = "http"
    stream_id: int = 1
    info: ConnectionInfo = field(default_factory=ConnectionInfo)
    path_params: dict[str, str] = field(default_factory=dict)
    route: str | None = None
    request_id: str = ""
    path: str = ""
    query_string: str = ""
    body_reader: Callable[[], Awaitable[bytes]] = _empty_body

    def __post_init__(self) -> None:
        path, _, query = self.target.partition("?")
        self.path = path
        self.query_string = query

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``default``."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, first value of each, percent-decoded."""
        return dict(reversed(parse_qsl(self.query_string, keep_blank_values=True)))

    async def body(self) -> bytes:
        """The whole request body (s). Sends 100 Continue first when the client expects it.

        Raises:
            HTTPError: 413 when the body exceeds the server's limit; 400 when the client
                aborted it.
        """
        return await self.body_reader()


def new_request(method: str, target: str, headers: list[tuple[str, str]], http_version: str, authority: str,
                scheme: str, stream_id: int, info: ConnectionInfo, request_id: str,
                body_reader: Callable[[], Awaitable[bytes]], _new: Any = object.__new__) -> Request:
    """A :class:`Request` with every field given, ``path_params`` empty and ``route`` unset: what
    ``Request(...)`` builds, at a third of the dataclass ``__init__``'s cost (the engines' glue
    builds one per request)."""
    r = _new(Request)
    r.method = method
    r.target = target
    r.headers = headers
    r.http_version = http_version
    r.authority = authority
    r.scheme = scheme
    r.stream_id = stream_id
    r.info = info
    r.path_params = {}
    r.route = None
    r.request_id = request_id
    r.path, _, r.query_string = target.partition("?")
    r.body_reader = body_reader
    return r


@dataclass(kw_only=True, slots=True, eq=False)
class Response:
    """One HTTP response: ``status`` (int), ``headers`` (lowercase ``[(name, value)]``), ``body``."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Body = b""

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        """A ``text/plain`` (or ``content_type``) response with a UTF-8 body."""
        return cls(status=status, headers=[("content-type", content_type)], body=text.encode())

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> "Response":
        """An ``application/json`` response; ``obj`` is serialised compactly."""
        body = _json.dumps(obj, separators=(",", ":")).encode()
        return cls(status=status, headers=[("content-type", "application/json")], body=body)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (lowercase), or ``default``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


#: bytes of a file body read per piece where it cannot go out with sendfile (TLS, HTTP/2, ASGI)
FILE_CHUNK = 256 * 1024


def response_head(request: "Request", response: "Response") -> tuple[list[tuple[str, str]], bool]:
    """What every writer of a response decides the same way (the engines' exchange and the ASGI
    adapter): ``(headers, head_only)``. ``headers`` is the response's list plus the
    ``content-length`` its body implies when it has none (bytes: their length, not on 204/304;
    a :class:`FileBody`: its ``count``; an iterator: none, the connection frames it);
    ``head_only`` is true when no body goes out: HEAD (RFC 9110 §9.3.2), 204 and 304 (§15.3.5,
    §15.4.5)."""
    headers = list(response.headers)
    status = response.status
    body = response.body
    for name, _ in headers:
        if name == "content-length":
            break
    else:
        if isinstance(body, (bytes, bytearray)):
            if status != 204 and status != 304:
                headers.append(("content-length", str(len(body))))
        elif isinstance(body, FileBody):
            headers.append(("content-length", str(body.count)))
    return headers, request.method == "HEAD" or status in (204, 304)


def file_chunks(body: "FileBody", size: int = FILE_CHUNK) -> "Iterator[bytes]":
    """The bytes of ``body`` in pieces of at most ``size`` (bytes), read as they are asked for.

    Raises:
        OSError: the file cannot be opened or read.
        RuntimeError: it is shorter than ``offset + count`` (it shrank after the response's
            content-length was decided: the framing can no longer be honoured).
    """
    with open(body.path, "rb") as f:
        f.seek(body.offset)
        left = body.count
        while left > 0:
            chunk = f.read(min(size, left))
            if not chunk:
                raise RuntimeError(f"{body.path}: {left} bytes short of the declared length")
            left -= len(chunk)
            yield chunk
