"""Parsing helpers of the HTTP/1.x server connection (RFC 9112): request heads, chunk lines, fields.

Theory of operation: ``H1Connection`` (``protocol/http1.py``) finds a complete head with
``bytes.find(b"\\r\\n\\r\\n")`` and hands it to ``parse_head``, which validates it in one pass with
precompiled regexes and returns a ``RequestHead``; every rejection is an ``H1Error`` carrying the
status to answer with. Nothing here keeps state between calls.

Strictness, chosen for request-smuggling safety (RFC 9112 §11.2):
- Lines end with CRLF. A bare LF (allowed by RFC 9112 §2.2 as a MAY) or bare CR anywhere in the head
  or in a chunk line is a 400: two parsers that disagree on line ends are how smuggling starts.
- obs-fold (a field line starting with SP/HTAB) is a 400 (RFC 9112 §5.2 allows rejecting it);
  whitespace between a field name and the colon is a 400 (§5.1 MUST).
- Transfer-Encoding with Content-Length, Transfer-Encoding in HTTP/1.0, a final coding other than
  ``chunked`` or ``chunked`` twice are 400 (§6.1, §6.3); other codings before ``chunked`` are 501.
"""

from __future__ import annotations

import re

from .caches import BoundedCache
from .errors import H1Error

__all__ = [
    "KNOWN_METHODS",
    "REASONS",
    "RequestHead",
    "parse_head",
    "FieldCache",
    "field_cache",
    "HeadCache",
    "head_cache",
    "parse_fields",
    "parse_chunk_size",
    "check_line_ends",
    "head_overflow",
    "status_line",
    "error_response_bytes",
    "is_token",
    "other_target_form",
]

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    417: "Expectation Failed", 421: "Misdirected Request", 422: "Unprocessable Content",
    425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    507: "Insufficient Storage", 511: "Network Authentication Required",
}

_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``b"HTTP/1.1 200 OK\\r\\n"`` for ``status`` (cached); an unknown code gets an empty reason."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "").encode("ascii"))
        _STATUS_LINES[status] = line
    return line


def error_response_bytes(status: int, reason: str, head: str = "", retry_after_s: int | None = None) -> bytes:
    """A complete HTTP/1.1 error response that ends the connection: status line, ``head`` (extra
    field lines, each ending CRLF: a Date, a Server), ``Retry-After`` in seconds when given
    (RFC 9110 §10.2.3), ``Connection: close`` (RFC 9112 §9.6) and a text/plain body
    ``"<status> <reason phrase>: <reason>\\n"``. Used for every answer the protocol layer or an
    engine sends without a request to answer (400s, 408, the 503 past ``--max-connections``)."""
    body = f"{status} {REASONS.get(status, '')}: {reason}\n".encode("ascii", "replace")
    if retry_after_s is not None:
        head += f"retry-after: {retry_after_s}\r\n"
    head += (f"content-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
             f"connection: close\r\n\r\n")
    return status_line(status) + head.encode("latin-1") + body


_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(r"[%s]+" % _TCHAR)
# request-line = method SP request-target SP HTTP-version (RFC 9112 §3). The fast path matches a
# valid HTTP/1.x line at once; _REQUEST_LINE_PARTS then tells a bad version (505) from garbage (400).
_REQUEST_LINE = re.compile(r"([%s]+) ([\x21-\x7e]+) HTTP/1\.([01])" % _TCHAR)
_REQUEST_LINE_PARTS = re.compile(r"([^ ]+) ([^ ]+) HTTP/([0-9])\.([0-9])")
_TARGET = re.compile(r"[\x21-\x7e]+")
# CRLF field-line, field-line = field-name ":" OWS field-value OWS (RFC 9112 §5, RFC 9110 §5.5):
# the value starts and ends with VCHAR / obs-text and may hold SP / HTAB inside. Heads are decoded
# as latin-1 once, so these run on str; each line is matched after the CRLF that precedes it.
_FIELD = re.compile(r"\r\n([%s]+):[ \t]*((?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*"
                    r"[^\x00-\x20\x7f])?)?)[ \t]*(?=\r\n|\Z)" % _TCHAR)
_HOST = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")
_CL = re.compile(r"[0-9]+")
# chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[%s]+(?:[ \t]*=[ \t]*(?:[%s]+|\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]"
    rb"|\\[^\x00-\x08\x0a-\x1f\x7f])*\"))?)*)[ \t]*" % (_TCHAR.encode(), _TCHAR.encode()))


def is_token(name: str) -> bool:
    """True when ``name`` is an RFC 9110 §5.6.2 token (a valid field name or method)."""
    return _TOKEN.fullmatch(name) is not None


def check_line_ends(data: bytes | bytearray | str) -> bool:
    """True when every CR and LF in ``data`` is part of a CRLF pair."""
    if isinstance(data, str):
        crlf = data.count("\r\n")
        return data.count("\n") == crlf and data.count("\r") == crlf
    crlf = data.count(b"\r\n")
    return data.count(b"\n") == crlf and data.count(b"\r") == crlf


def parse_fields(text: str, start: int, max_fields: int) -> list[tuple[str, str]]:
    """Parse the field lines of ``text[start:]``, each *preceded* by CRLF (``"\\r\\nA: b\\r\\nC: d"``),
    into (lowercase name, value) pairs in order, OWS stripped (RFC 9112 §5). ``text`` is a
    latin-1-decoded head or trailer section whose CR and LF all form CRLF pairs.

    Raises:
        H1Error: 400 for obs-fold, whitespace before the colon, a non-token name or a control
            character in a value; 431 for more than ``max_fields`` lines.
    """
    lines = text.count("\r\n", start)
    if lines > max_fields:
        raise H1Error(431, "too many header fields")
    pairs = _FIELD.findall(text, start)
    if len(pairs) != lines:
        for line in text[start + 2:].split("\r\n"):
            if _FIELD.fullmatch("\r\n" + line) is None:
                if line[:1] in (" ", "\t"):
                    raise H1Error(400, "obsolete line folding is not accepted")
                raise H1Error(400, "malformed header field")
        raise H1Error(400, "malformed header section")  # pragma: no cover - defensive
    return [(name.lower(), value) for name, value in pairs]


class RequestHead:
    """A validated request head (plain class with ``__slots__``), read-only once ``parse_head``
    returns it: a head repeated byte for byte is the same object (``HeadCache``).

    Attributes:
        method, target, version (``"1.0"``/``"1.1"``), headers: as in ``RequestReceived``.
        host: the Host value, ``""`` when absent.
        content_length: body length; ``None`` when not given (with ``chunked`` false: no body).
        chunked: the body is chunked.
        keep_alive: the connection persists after this exchange (RFC 9112 §9.3).
        keep_alive_header: an HTTP/1.0 client asked for keep-alive (answer ``connection: keep-alive``).
        expect_continue: ``Expect: 100-continue`` in an HTTP/1.1 request.
        upgrade_h2c: the ``HTTP2-Settings`` value when the request asks for ``Upgrade: h2c``
            (RFC 7540 §3.2) with the right Connection options; ``None`` otherwise.
    """

    __slots__ = ("method", "target", "version", "headers", "host", "content_length", "chunked",
                 "keep_alive", "keep_alive_header", "expect_continue", "upgrade_h2c")

    def __init__(self, method: str, target: str, version: str, info: tuple) -> None:
        self.method = method
        self.target = target
        self.version = version
        (self.headers, self.host, self.content_length, self.chunked, self.keep_alive,
         self.keep_alive_header, self.expect_continue, self.upgrade_h2c) = info


_SPECIAL = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect",
                      "upgrade", "http2-settings"})


def _overflow_status(head: bytes | bytearray, max_target_length: int) -> int:
    line_end = head.find(b"\r\n")
    first = head if line_end < 0 else head[:line_end]
    return 414 if len(first) > max_target_length + 32 else 431


def head_overflow(buf: bytes | bytearray, max_target_length: int) -> H1Error:
    """The error for a head that outgrew ``max_header_bytes``: 414 if the request line is what is
    long, else 431."""
    if _overflow_status(buf, max_target_length) == 414:
        return H1Error(414, "request target too long")
    return H1Error(431, "request header section too large")


def _bad_request_line(line: str, max_target_length: int) -> None:
    """Raise the H1Error that a request line failing the fast-path regex deserves."""
    m = _REQUEST_LINE_PARTS.fullmatch(line)
    if m is None:
        if len(line) > max_target_length + 32:
            raise H1Error(414, "request target too long")
        raise H1Error(400, "malformed request line")
    method, target, major, minor = m.groups()
    if _TOKEN.fullmatch(method) is None:
        raise H1Error(400, "malformed method")
    if len(target) > max_target_length:
        raise H1Error(414, "request target too long")
    if _TARGET.fullmatch(target) is None:
        raise H1Error(400, "malformed request target")
    raise H1Error(505, "only HTTP/1.0 and HTTP/1.1 are supported")


class _TextCache(BoundedCache):
    """A :class:`protocol.caches.BoundedCache` keyed by text: at most ``MAX`` keys of at most
    ``MAX_KEY`` characters, so memory stays under ~``MAX * MAX_KEY`` characters."""

    MAX = 256
    MAX_KEY = 2048


    def __init__(self) -> None:
        super().__init__(self.MAX, self.MAX_KEY)


def _shared(registry: dict, cls: type, key: tuple) -> "_TextCache":
    """The cache of ``cls`` in ``registry`` for ``key`` (the limits its entries were checked
    against), made on first use."""
    cache = registry.get(key)
    if cache is None:
        cache = registry[key] = cls()
    return cache


class FieldCache(_TextCache):
    """Analyses of field sections already seen, for heads that repeat (keep-alive clients send
    the same fields again and again). Keys: the section text, CRLF-led; values: the tuple
    ``RequestHead`` unpacks. Bounded as every ``_TextCache``. One cache per (version, limits):
    entries are only valid for the limits they were checked against.
    """


_caches: dict[tuple, FieldCache] = {}


def field_cache(version: str, max_headers: int, max_body_size: int) -> FieldCache:
    """The shared cache for heads of ``version`` checked against these limits."""
    return _shared(_caches, FieldCache, (version, max_headers, max_body_size))  # type: ignore[return-value]


class HeadCache(_TextCache):
    """Whole request heads already parsed, for clients that repeat a request byte for byte (a
    keep-alive client polling one URL, a load generator). Keys: the head's text (request line and
    fields); values: the :class:`RequestHead` ``parse_head`` made of it (shared, read-only).
    Bounded as every ``_TextCache``. One cache per set of limits (``head_cache``): an entry is
    only valid for the limits it was checked against. A head that differs in one byte is parsed
    (and its field section may still come from the :class:`FieldCache`).
    """


_head_caches: dict[tuple, HeadCache] = {}


def head_cache(max_target_length: int, max_header_bytes: int, max_headers: int, max_body_size: int) -> HeadCache:
    """The shared cache of whole heads checked against these limits."""
    return _shared(_head_caches, HeadCache,  # type: ignore[return-value]
                   (max_target_length, max_header_bytes, max_headers, max_body_size))


def parse_head(head: bytes | bytearray, *, max_target_length: int, max_header_bytes: int,
               max_headers: int, max_body_size: int,
               caches: tuple[FieldCache, FieldCache] | None = None, heads: HeadCache | None = None) -> RequestHead:
    """Parse and validate a request head (``head`` excludes the final CRLFCRLF).

    Implements RFC 9112 §2-§3 (request line), §5 (fields), §6 (message body length), §9.3
    (persistence), RFC 9110 §7.2 (Host) and §10.1.1 (Expect). ``caches`` are the field caches for
    HTTP/1.0 and HTTP/1.1 made for these limits (``field_cache``); ``heads`` the cache of whole
    heads made for them (``head_cache``), looked up first; ``None`` parses every time.

    Raises:
        H1Error: 400, 413, 414, 417, 431, 501 or 505.
    """
    if len(head) + 4 > max_header_bytes:
        raise head_overflow(head, max_target_length)
    text = head.decode("latin-1")
    if heads is not None:
        seen = heads.data.get(text)
        if seen is not None:  # this very head passed every check below under these limits
            return seen
    i = text.find("\r\n")
    line = text if i < 0 else text[:i]
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        if not check_line_ends(text):
            raise H1Error(400, "bare CR or LF in the request head")
        _bad_request_line(line, max_target_length)
    method, target, minor = m.groups()
    if len(target) > max_target_length:
        raise H1Error(414, "request target too long")
    version = "1.1" if minor == "1" else "1.0"
    block = "" if i < 0 else text[i:]
    cache = None if caches is None else caches[minor == "1"]
    info = None if cache is None else cache.data.get(block)
    if info is None:
        if not check_line_ends(block):
            raise H1Error(400, "bare CR or LF in the request head")
        info = _analyse_fields(block, version, max_headers, max_body_size)
        if cache is not None:
            cache.remember(block, info)
    if method not in KNOWN_METHODS:
        raise H1Error(501, "method not implemented")
    req = RequestHead(method, target, version, info)
    authority = None
    if target[0] != "/" or method == "CONNECT":  # the rare forms, checked apart (RFC 9112 §3.2)
        req.target, authority = other_target_form(method, target)
        if authority is not None:
            req.host = authority
    if heads is not None:
        heads.remember(text, req)
    return req


_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^#]*)")
_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+):[0-9]+")


def other_target_form(method: str, target: str) -> tuple[str, str | None]:
    """Check a request-target that is not origin-form, or any target of CONNECT (RFC 9112
    §3.2.2-§3.2.4).

    Returns:
        ``(target, authority)``: an absolute-form target (any method) becomes its origin-form
        path and query (``"/"`` for an empty path) with its authority, which the server MUST use
        instead of Host (§3.2.2); the authority-form of CONNECT and the asterisk-form of
        OPTIONS are returned as they are, with no authority.

    Raises:
        H1Error: 400 for any other target (``foo/bar``), an asterisk-form not on OPTIONS, an
            authority-form not on CONNECT (or on CONNECT without ``host:port``), a scheme other
            than http/https, an empty authority, or userinfo in the authority (RFC 9110 §4.2.4:
            a sender MUST NOT generate it; a recipient SHOULD treat it as an error).
    """
    if method == "CONNECT":
        if _AUTHORITY.fullmatch(target):
            return target, None
        raise H1Error(400, "CONNECT needs the authority-form host:port (RFC 9112 §3.2.3)")
    if target == "*":
        if method == "OPTIONS":
            return target, None
        raise H1Error(400, "asterisk-form is only for OPTIONS (RFC 9112 §3.2.4)")
    m = _ABSOLUTE.fullmatch(target)
    if m is None:
        raise H1Error(400, "request target is not origin-form, absolute-form, authority-form or *")
    scheme, authority, rest = m.groups()
    if scheme.lower() not in ("http", "https"):
        raise H1Error(400, f"unsupported scheme {scheme!r} in the request target")
    if "@" in authority:
        raise H1Error(400, "userinfo in the request target (RFC 9110 §4.2.4)")
    if not authority or _HOST.fullmatch(authority) is None:
        raise H1Error(400, "invalid authority in the request target")
    if not rest.startswith("/"):
        rest = "/" + rest
    return rest, authority


def _analyse_fields(block: str, version: str, max_headers: int, max_body_size: int) -> tuple:
    """Parse a CRLF-led field section and derive what framing and persistence need from it."""
    fields = parse_fields(block, 0, max_headers) if block else []
    host = cl = te = conn = expect = upgrade = settings = None
    hosts = settings_count = 0
    for name, value in fields:
        if name in _SPECIAL:
            if name == "host":
                hosts += 1
                host = value
            elif name == "content-length":
                cl = value if cl is None else cl + "," + value
            elif name == "transfer-encoding":
                te = value if te is None else te + "," + value
            elif name == "connection":
                conn = value if conn is None else conn + "," + value
            elif name == "expect":
                expect = value if expect is None else expect + "," + value
            elif name == "upgrade":
                upgrade = value if upgrade is None else upgrade + "," + value
            else:
                settings = value
                settings_count += 1
    if hosts > 1:
        raise H1Error(400, "more than one Host header")
    if host is None:
        if version == "1.1":
            raise H1Error(400, "missing Host header")
        host = ""
    elif _HOST.fullmatch(host) is None:
        raise H1Error(400, "invalid Host header")
    chunked = False
    length = None
    if te is not None:
        if version == "1.0":
            raise H1Error(400, "Transfer-Encoding in an HTTP/1.0 request")
        if cl is not None:
            raise H1Error(400, "both Transfer-Encoding and Content-Length")
        codings = [c.strip(" \t").lower() for c in te.split(",")]
        if codings[-1] != "chunked" or codings.count("chunked") > 1:
            raise H1Error(400, "chunked must be the final transfer coding, once")
        for c in codings[:-1]:
            if _TOKEN.fullmatch(c) is None:
                raise H1Error(400, "malformed Transfer-Encoding")
        if len(codings) > 1:
            raise H1Error(501, "transfer coding not implemented")
        chunked = True
    elif cl is not None:
        values = {v.strip(" \t") for v in cl.split(",")}
        if len(values) != 1:
            raise H1Error(400, "conflicting Content-Length values")
        value = values.pop()
        if _CL.fullmatch(value) is None:
            raise H1Error(400, "invalid Content-Length")
        if len(value) > 18 or int(value) > max_body_size:
            raise H1Error(413, "request body too large")
        length = int(value)
    tokens = () if conn is None else {t.strip(" \t") for t in conn.lower().split(",")}
    keep_alive = version == "1.1"
    keep_alive_header = False
    if "close" in tokens:
        keep_alive = False
    elif version == "1.0" and "keep-alive" in tokens:
        keep_alive = keep_alive_header = True
    expect_continue = False
    if expect is not None and version == "1.1":
        if expect.strip(" \t").lower() != "100-continue":
            raise H1Error(417, "unsupported expectation")
        expect_continue = True
    h2c = None
    if (upgrade is not None and settings_count == 1 and version == "1.1" and "upgrade" in tokens
            and "http2-settings" in tokens
            and "h2c" in {t.strip(" \t") for t in upgrade.lower().split(",")}):
        h2c = settings
    return (tuple(fields), host, length, chunked, keep_alive, keep_alive_header, expect_continue, h2c)


def parse_chunk_size(line: bytes | bytearray) -> int:
    """The size of a chunk line (RFC 9112 §7.1) without its CRLF; extensions are checked, ignored.

    Raises:
        H1Error: 400 for a malformed line or more than 16 hex digits.
    """
    m = _CHUNK_LINE.fullmatch(line)
    if m is None:
        raise H1Error(400, "malformed chunk size line")
    digits = m[1]
    if len(digits) > 16:
        raise H1Error(400, "chunk size too long")
    return int(digits, 16)
