"""gzip content coding, negotiated from ``Accept-Encoding`` (RFC 9110 §12.5.3, §8.4; RFC 1952).

:func:`maybe_compress` is applied by ``App.handle`` to every response. It compresses when all hold:

- the status is 200..299 but not 204 or 206 (a range of a compressed body would be a range of
  other bytes), nor 1xx/304;
- the response has no ``content-encoding`` or ``content-range`` yet;
- the media type is compressible (:func:`is_compressible`: ``text/*``, JSON, JavaScript, XML,
  SVG, ...);
- the body is ``bytes`` of at least ``min_size`` bytes, or a whole-file :class:`FileBody` of
  ``min_size`` .. :data:`MAX_FILE_SIZE` bytes (read and compressed once, then cached by
  ``(path, mtime_ns, size)`` in a small LRU). Streamed bodies (async iterators: /stream, SSE) are
  never compressed;
- the client accepts gzip: ``gzip`` (or ``x-gzip``) with q > 0, or ``*`` with q > 0 and gzip not
  listed. ``gzip;q=0`` refuses. No ``Accept-Encoding`` at all gets identity (most clients that
  omit it cannot decode anything else, although §12.5.3 would allow any coding).

Whenever the first four hold, ``vary: accept-encoding`` is added (even when the client did not
accept gzip), so caches keep the variants apart. A compressed response gets
``content-encoding: gzip``, and a strong ``etag`` becomes weak (``W/"..."``), as nginx does: the
validator no longer names these exact bytes (RFC 9110 §8.8.1). ``content-length`` is left to the
glue. Compression is deterministic (gzip header mtime 0, level 6).
"""

from __future__ import annotations

import gzip
import os
import threading
from collections import OrderedDict

from .messages import FileBody, Request, Response

__all__ = ["maybe_compress", "accepts_gzip", "parse_accept_encoding", "is_compressible", "add_vary",
           "DEFAULT_MIN_SIZE", "MAX_FILE_SIZE", "LEVEL"]

DEFAULT_MIN_SIZE = 1024
MAX_FILE_SIZE = 4 * 1024 * 1024
LEVEL = 6
_CACHE_ENTRIES = 64
_CACHE_BYTES = 32 * 1024 * 1024

_COMPRESSIBLE_APP = frozenset({
    "application/json", "application/javascript", "application/ecmascript", "application/xml",
    "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/ld+json",
    "application/manifest+json", "application/wasm", "application/x-javascript",
    "application/x-ndjson", "application/csv", "application/toml", "application/yaml",
    "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp", "font/ttf", "font/otf",
})


def parse_accept_encoding(value: str) -> dict[str, float]:
    """``"gzip;q=0.8, br, *;q=0"`` -> ``{"gzip": 0.8, "br": 1.0, "*": 0.0}`` (codings lowercased).

    An unparsable q-value counts as 0 (refused); q is clamped to 0..1 (RFC 9110 §12.4.2).
    """
    result: dict[str, float] = {}
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(val.strip())))
                except ValueError:
                    q = 0.0
                if q != q:  # NaN
                    q = 0.0
        result[coding] = q
    return result


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when the ``Accept-Encoding`` value lets the server send gzip (see the module doc)."""
    if not accept_encoding:
        return False
    codings = parse_accept_encoding(accept_encoding)
    for name in ("gzip", "x-gzip"):
        if name in codings:
            return codings[name] > 0
    return codings.get("*", 0.0) > 0


def is_compressible(content_type: str | None) -> bool:
    """True for media types that gzip shrinks: ``text/*``, JSON, JavaScript, XML, SVG, ``+json``,
    ``+xml`` (parameters such as ``; charset=utf-8`` are ignored)."""
    if not content_type:
        return False
    mt = content_type.partition(";")[0].strip().lower()
    return (mt.startswith("text/") or mt in _COMPRESSIBLE_APP or mt.endswith("+json")
            or mt.endswith("+xml"))


def add_vary(headers: list[tuple[str, str]], token: str = "accept-encoding") -> list[tuple[str, str]]:
    """A copy of ``headers`` whose ``vary`` lists ``token`` (merged into an existing ``vary``)."""
    out = []
    merged = False
    for name, value in headers:
        if name == "vary" and not merged:
            tokens = [t.strip().lower() for t in value.split(",")]
            if token not in tokens and "*" not in tokens:
                value = f"{value}, {token}"
            merged = True
        out.append((name, value))
    if not merged:
        out.append(("vary", token))
    return out


class _Cache:
    """A small thread-safe LRU of compressed files: (path, mtime_ns, size) -> gzip bytes."""

    def __init__(self, entries: int = _CACHE_ENTRIES, max_bytes: int = _CACHE_BYTES) -> None:
        self._data: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._entries = entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, int, int], value: bytes) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._data[key] = value
            self._bytes += len(value)
            while self._data and (len(self._data) > self._entries or self._bytes > self._max_bytes):
                _, dropped = self._data.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0


_cache = _Cache()


def _compress_file(body: FileBody, min_size: int) -> bytes | None:
    """The gzip of the whole file ``body`` names, or None (not whole, wrong size, unreadable)."""
    try:
        st = os.stat(body.path)
    except OSError:
        return None
    if body.offset != 0 or body.count != st.st_size or not (min_size <= st.st_size <= MAX_FILE_SIZE):
        return None
    key = (body.path, st.st_mtime_ns, st.st_size)
    data = _cache.get(key)
    if data is None:
        try:
            with open(body.path, "rb") as f:
                raw = f.read(MAX_FILE_SIZE + 1)
        except OSError:
            return None
        if len(raw) != st.st_size:  # changed under us: send it as it is
            return None
        data = gzip.compress(raw, compresslevel=LEVEL, mtime=0)
        _cache.put(key, data)
    return data


def maybe_compress(request: Request, response: Response, min_size: int = DEFAULT_MIN_SIZE) -> Response:
    """``response``, or a new gzip-coded Response when the rules of the module doc allow it.

    ``response`` itself is never mutated (its header list may be shared by precomputed responses).
    """
    status = response.status
    if status < 200 or status >= 300 or status in (204, 206):
        return response
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        if len(body) < min_size:
            return response
    elif isinstance(body, FileBody):
        if body.count < min_size or body.count > MAX_FILE_SIZE:
            return response
    else:
        return response
    content_type = None
    for name, value in response.headers:
        if name in ("content-encoding", "content-range"):
            return response
        if name == "content-type" and content_type is None:
            content_type = value
    if not is_compressible(content_type):
        return response
    headers = add_vary(response.headers)
    if not accepts_gzip(request.header("accept-encoding")):
        return Response(status=status, headers=headers, body=body)
    if isinstance(body, FileBody):
        data = _compress_file(body, min_size)
        if data is None:
            return Response(status=status, headers=headers, body=body)
    else:
        data = gzip.compress(bytes(body), compresslevel=LEVEL, mtime=0)
    out = []
    for name, value in headers:
        if name == "etag" and not value.startswith("W/"):
            value = "W/" + value
        elif name == "accept-ranges":
            continue  # ranges of the gzip bytes are not offered (206 is never compressed)
        out.append((name, value))
    out.append(("content-encoding", "gzip"))
    return Response(status=status, headers=out, body=data)
