"""HTTP/2 message rules, RFC 9113 §8: checking header blocks we receive, cleaning those we send.

Received field blocks arrive from HPACK as ``[(name: bytes, value: bytes), ...]``. A block that
breaks a rule of §8 makes the message *malformed* (§8.1.1), a stream error PROTOCOL_ERROR: the
checks here raise ``H2StreamError`` and the connection resets the stream. Values are decoded as
ISO-8859-1 (RFC 9110 §5.5), names are ASCII.
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from .errors import ErrorCode, H2StreamError, LocalProtocolError

__all__ = [
    "CONNECTION_SPECIFIC",
    "RequestHead",
    "validate_request",
    "validate_response",
    "validate_trailers",
    "encode_fields",
    "header_list_size",
]

CONNECTION_SPECIFIC = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})
"""Connection-specific fields that HTTP/2 forbids (§8.2.2)."""

_CONNECTION_SPECIFIC_B = frozenset(n.encode() for n in CONNECTION_SPECIFIC)
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
# a field name is a lowercase token (§8.2.1, RFC 9110 §5.1); pseudo-header names are checked apart.
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
_BAD_NAME_STR = re.compile(r"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUE_STR = re.compile(r"[\x00\r\n]")


class RequestHead(NamedTuple):
    """A valid request head: pseudo-header values and the regular fields (str, ISO-8859-1)."""

    method: str
    scheme: str
    authority: str
    path: str
    headers: tuple[tuple[str, str], ...]
    content_length: int | None


def _malformed(stream_id: int, reason: str) -> H2StreamError:
    return H2StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, reason)


def _regular(stream_id: int, name: bytes, value: bytes, out: list, cookies: list) -> int | None:
    """Check one regular field and append it to ``out``; returns a content-length it carries."""
    if _BAD_NAME.search(name) or not name:
        raise _malformed(stream_id, "invalid field name (uppercase or not a token)")
    if _BAD_VALUE.search(value):
        raise _malformed(stream_id, "invalid field value")
    if name in _CONNECTION_SPECIFIC_B:
        raise _malformed(stream_id, "connection-specific field")
    if name == b"te" and value.lower() != b"trailers":
        raise _malformed(stream_id, "TE other than trailers")
    if name == b"cookie":  # §8.2.3: crumbs are joined back for HTTP/1.1-minded applications
        cookies.append(value.decode("latin-1"))
        return None
    out.append((name.decode("latin-1"), value.decode("latin-1")))
    if name == b"content-length":
        if not value.isdigit() or len(value) > 18:
            raise _malformed(stream_id, "invalid content-length")
        return int(value)
    return None


def validate_request(stream_id: int, fields: list[tuple[bytes, bytes]]) -> RequestHead:
    """Check a request header block (§8.3.1, §8.2) and split it.

    Args:
        stream_id: for the error.
        fields: decoded (name, value) pairs in order.

    Raises:
        H2StreamError: PROTOCOL_ERROR for a malformed request: a missing, duplicated, unknown,
            response or late pseudo-header; an empty or relative ``:path`` (``*`` only for
            OPTIONS, §8.3.1); userinfo in ``:authority``; neither ``:authority`` nor ``host``, more
            than one ``host``, or a ``host`` that differs from ``:authority`` (§8.3.1, RFC 9110
            §7.2); an uppercase or invalid
            field name; a connection-specific field; TE other than ``trailers``; an invalid or
            conflicting content-length.
    """
    pseudo: dict[bytes, bytes] = {}
    out: list[tuple[str, str]] = []
    cookies: list[str] = []
    content_length = None
    regular_seen = False
    for name, value in fields:
        if name[:1] == b":":
            if regular_seen:
                raise _malformed(stream_id, "pseudo-header after a regular field")
            if name not in _REQUEST_PSEUDO:
                raise _malformed(stream_id, f"unknown or response pseudo-header {name!r}")
            if name in pseudo:
                raise _malformed(stream_id, f"duplicated pseudo-header {name!r}")
            pseudo[name] = value
            continue
        regular_seen = True
        cl = _regular(stream_id, name, value, out, cookies)
        if cl is not None:
            if content_length is not None and cl != content_length:
                raise _malformed(stream_id, "conflicting content-length")
            content_length = cl
    if cookies:
        out.append(("cookie", "; ".join(cookies)))
    method = pseudo.get(b":method")
    if not method:
        raise _malformed(stream_id, "missing :method")
    authority = pseudo.get(b":authority", b"")
    if _BAD_VALUE.search(authority) or any(_BAD_VALUE.search(v) for v in pseudo.values()):
        raise _malformed(stream_id, "invalid pseudo-header value")
    if b"@" in authority:  # §8.3.1: no userinfo in :authority for http/https (RFC 9110 §4.2.4)
        raise _malformed(stream_id, "userinfo in :authority")
    if method == b"CONNECT":
        if b":scheme" in pseudo or b":path" in pseudo or not authority:
            raise _malformed(stream_id, "CONNECT needs :authority only")
        return RequestHead("CONNECT", "", authority.decode("latin-1"), "", tuple(out), content_length)
    scheme = pseudo.get(b":scheme")
    path = pseudo.get(b":path")
    if not scheme:
        raise _malformed(stream_id, "missing :scheme")
    if path is None:
        raise _malformed(stream_id, "missing :path")
    if not path:
        raise _malformed(stream_id, "empty :path")
    if scheme in (b"http", b"https") and path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
        raise _malformed(stream_id, ":path is not origin-form")
    hosts = [v for k, v in out if k == "host"]
    if len(hosts) > 1:  # RFC 9110 §7.2: more than one Host is a bad request
        raise _malformed(stream_id, "more than one host field")
    if hosts and authority and hosts[0].encode("latin-1").lower() != authority.lower():
        # §8.3.1: a Host that differs from :authority SHOULD be treated as malformed (an empty
        # Host beside :authority too); nghttp2 resets such a stream, h2 closes the connection
        raise _malformed(stream_id, "host differs from :authority")
    if not authority:
        if not hosts or not hosts[0]:
            # RFC 9110 §7.2: a request carries its authority in :authority or Host; one with
            # neither (or an empty Host) names no target: nghttp2 and h2 both refuse it
            raise _malformed(stream_id, "neither :authority nor host")
        authority = hosts[0].encode("latin-1")
    return RequestHead(method.decode("latin-1"), scheme.decode("latin-1"), authority.decode("latin-1"),
                       path.decode("latin-1"), tuple(out), content_length)


def validate_response(stream_id: int, fields: list[tuple[bytes, bytes]]) -> tuple[int, tuple[tuple[str, str], ...], int | None]:
    """Check a response header block (§8.3.2): exactly one ``:status`` of three digits, first.

    Returns:
        ``(status, headers, content_length)``.

    Raises:
        H2StreamError: PROTOCOL_ERROR for a malformed response.
    """
    if not fields or fields[0][0] != b":status":
        raise _malformed(stream_id, "missing :status")
    status = fields[0][1]
    if len(status) != 3 or not status.isdigit():
        raise _malformed(stream_id, "invalid :status")
    out: list[tuple[str, str]] = []
    cookies: list[str] = []
    content_length = None
    for name, value in fields[1:]:
        if name[:1] == b":":
            raise _malformed(stream_id, "extra pseudo-header in a response")
        cl = _regular(stream_id, name, value, out, cookies)
        if cl is not None:
            content_length = cl
    if cookies:
        out.append(("cookie", "; ".join(cookies)))
    return int(status), tuple(out), content_length


def validate_trailers(stream_id: int, fields: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """Check a trailer section (§8.1): no pseudo-headers, the usual field rules.

    Raises:
        H2StreamError: PROTOCOL_ERROR when malformed.
    """
    out: list[tuple[str, str]] = []
    cookies: list[str] = []
    for name, value in fields:
        if name[:1] == b":":
            raise _malformed(stream_id, "pseudo-header in trailers")
        _regular(stream_id, name, value, out, cookies)
    if cookies:
        out.append(("cookie", "; ".join(cookies)))
    return tuple(out)


def encode_fields(pseudo: list[tuple[bytes, bytes]], headers: Iterable[tuple[str, str]],
                  drop: frozenset[str] = CONNECTION_SPECIFIC) -> list[tuple[bytes, bytes]]:
    """Our outgoing field list: ``pseudo`` first, then ``headers`` with the connection-specific
    fields dropped (§8.2.2: an application written for HTTP/1.1 may add them).

    Raises:
        LocalProtocolError: a name that is not a lowercase token, a value with CR, LF or NUL, or
            a character outside ISO-8859-1.
    """
    out = pseudo
    for name, value in headers:
        if _BAD_NAME_STR.search(name) or not name:
            raise LocalProtocolError(f"invalid header name {name!r} (HTTP/2 names are lowercase tokens)")
        if _BAD_VALUE_STR.search(value):
            raise LocalProtocolError(f"invalid header value for {name!r} (CR, LF or NUL)")
        if name in drop:
            continue
        try:
            out.append((name.encode("ascii"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise LocalProtocolError(f"header value of {name!r} is not ISO-8859-1") from None
    return out


def header_list_size(fields: list[tuple[bytes, bytes]]) -> int:
    """Size of a header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (§6.5.2): octets of
    names and values plus 32 per field."""
    return sum(len(n) + len(v) + 32 for n, v in fields)
