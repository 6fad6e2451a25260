"""How a response body is framed on the wire (RFC 9112 §6.3), one writer per framing, picked
from a table when the head is made (``WRITERS``), as h11's ``WRITERS``: no body (HEAD, 204, 304,
or an empty body with ``content-length: 0``), ``content-length``, ``chunked`` (HTTP/1.1 without a
length) and until-close (HTTP/1.0 without a length). A writer appends to the connection's output
(``conn._out``) and keeps the body's count (``conn._to_send``).
"""

from __future__ import annotations

from typing import Any

from .caches import BoundedCache
from .errors import LocalProtocolError
from .events import Headers
from .h1_parse import is_token
from .h1_states import Recv

__all__ = ["Writer", "NO_BODY", "LENGTH", "CHUNKED", "UNTIL_CLOSE", "header_block", "check_name", "VALID_NAMES"]

#: field names already checked to be tokens (bounded: at most 1,024; process-wide, names only)
VALID_NAMES = BoundedCache(1024)


class Writer:
    """One framing of a response body. ``data`` sends part of the body, ``end`` ends it."""

    name = "no body"

    def data(self, conn: Any, data: bytes) -> None:
        """Part of the body (dropped: HEAD, 204, 304 carry none)."""

    def end(self, conn: Any, trailers: Headers) -> None:
        """The body is over (trailers are dropped unless chunked)."""


class _Length(Writer):
    name = "content-length"

    def data(self, conn: Any, data: bytes) -> None:
        """Raises: LocalProtocolError: more body than the content-length."""
        conn._to_send -= len(data)
        if conn._to_send < 0:
            conn._keep_alive = False
            raise LocalProtocolError("more body than content-length")
        conn._out.append(data)

    def end(self, conn: Any, trailers: Headers) -> None:
        """Raises: LocalProtocolError: less body than the content-length (the connection closes)."""
        if conn._to_send:
            conn._closed = True
            conn._recv_to(Recv.CLOSED)
            raise LocalProtocolError("less body than content-length")


class _Chunked(Writer):
    name = "chunked"

    def data(self, conn: Any, data: bytes) -> None:
        conn._out.append(b"%x\r\n%b\r\n" % (len(data), data))

    def end(self, conn: Any, trailers: Headers) -> None:
        if trailers:
            conn._out.append(b"0\r\n" + header_block(trailers).encode("latin-1") + b"\r\n")
        else:
            conn._out.append(b"0\r\n\r\n")


class _UntilClose(Writer):
    name = "until close"

    def data(self, conn: Any, data: bytes) -> None:
        conn._out.append(data)


NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = Writer(), _Length(), _Chunked(), _UntilClose()


def header_block(headers: Headers) -> str:
    """``name: value\\r\\n`` lines for trailers/informational responses, validated."""
    parts = []
    for name, value in headers:
        check_name(name)
        if "\r" in value or "\n" in value or "\0" in value:
            raise LocalProtocolError(f"CR, LF or NUL in the value of {name!r}")
        parts.append(f"{name}: {value}\r\n")
    return "".join(parts)


def check_name(name: str) -> None:
    """Raise LocalProtocolError unless ``name`` is a token (remembered once valid)."""
    if name not in VALID_NAMES:
        if not is_token(name):
            raise LocalProtocolError(f"invalid header name {name!r}")
        VALID_NAMES.remember(name, True)
