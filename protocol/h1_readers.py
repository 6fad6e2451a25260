"""The readers of a request body (RFC 9112 §6, §7), one per receive state, as h11's ``READERS``:
``read_length`` (Content-Length), ``read_chunked`` (the chunked coding, one step a call),
``read_upgrade`` (an h2c upgrade request's body, buffered whole). Each takes the
``H1Connection`` and the event list, parses what is buffered and returns True when it moved the
receive state on (parse again), False when it needs more bytes.

Raises (every reader): ``H1Error`` for bytes that break the framing; the connection answers it.
"""

from __future__ import annotations

from typing import Any

from .errors import H1Error
from .events import DataReceived, Event, MessageComplete, ProtocolSwitched, RequestReceived
from .h1_parse import check_line_ends, parse_chunk_size, parse_fields
from .h1_states import Recv

__all__ = ["read_length", "read_chunked", "read_upgrade", "take", "MAX_CHUNK_LINE", "SWITCHING"]

#: longest chunk-size line, extensions included (400 beyond)
MAX_CHUNK_LINE = 4096
#: the answer to an h2c upgrade request (RFC 7540 §3.2)
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n")


def take(buf: bytearray, most: int) -> bytes:
    """Remove and return up to ``most`` bytes from the front of ``buf`` (body bytes)."""
    if len(buf) <= most:
        data = bytes(buf)
        buf.clear()
    else:
        data = bytes(buf[:most])
        del buf[:most]
    return data


def read_length(conn: Any, events: list[Event]) -> bool:
    """Content-Length body: what is buffered, up to what is left; MessageComplete at its end."""
    buf = conn._buf
    if not buf:
        return False
    data = take(buf, conn._left)
    conn._left = left = conn._left - len(data)
    events.append(DataReceived(stream_id=conn._stream_id, data=data))
    if left:
        return False
    conn._recv_to(Recv.DONE)
    events.append(MessageComplete(stream_id=conn._stream_id))
    return True

def read_chunked(conn: Any, events: list[Event]) -> bool:
    """Chunked body (RFC 9112 §7.1): one step per call; False when more bytes are needed."""
    buf = conn._buf
    state = conn._recv
    if state is Recv.CHUNK_DATA:
        if not buf:
            return False
        data = take(buf, conn._left)
        conn._left -= len(data)
        events.append(DataReceived(stream_id=conn._stream_id, data=data))
        if conn._left:
            return False
        conn._recv_to(Recv.CHUNK_CRLF)
        return True
    if state is Recv.CHUNK_CRLF:
        if len(buf) < 2:
            if buf and buf[0] != 13:
                raise H1Error(400, "chunk data not followed by CRLF")
            return False
        if buf[0] != 13 or buf[1] != 10:
            raise H1Error(400, "chunk data not followed by CRLF")
        del buf[:2]
        conn._recv_to(Recv.CHUNK_SIZE)
        return True
    if state is Recv.CHUNK_SIZE:
        i = buf.find(b"\r\n")
        if i < 0:
            if len(buf) > MAX_CHUNK_LINE:
                raise H1Error(400, "chunk size line too long")
            if b"\n" in buf or b"\r" in buf[:-1]:
                raise H1Error(400, "bare CR or LF in a chunk size line")
            return False
        if i > MAX_CHUNK_LINE:
            raise H1Error(400, "chunk size line too long")
        line = bytes(buf[:i])
        del buf[:i + 2]
        if b"\n" in line or b"\r" in line:
            raise H1Error(400, "bare CR or LF in a chunk size line")
        size = parse_chunk_size(line)
        if size == 0:
            conn._recv_to(Recv.TRAILERS)
            conn._scanned = 0
            return True
        conn._body_total += size
        if conn._body_total > conn.config.max_body_size:
            raise H1Error(413, "request body too large")
        conn._left = size
        conn._recv_to(Recv.CHUNK_DATA)
        return True
    # TRAILERS: trailer-section CRLF (RFC 9112 §7.1.2)
    if len(buf) < 2:
        if buf and buf[0] != 13:
            return need_trailers(conn, buf)
        return False
    if buf[0] == 13 and buf[1] == 10:
        del buf[:2]
        conn._recv_to(Recv.DONE)
        events.append(MessageComplete(stream_id=conn._stream_id))
        return True
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return need_trailers(conn, buf)
    return take_trailers(conn, buf, end, events)

def need_trailers(conn: Any, buf: bytearray) -> bool:
    """A partial trailer section: within bounds and without bare CR/LF so far (H1Error else); False."""
    if len(buf) > conn.config.max_header_bytes:
        raise H1Error(431, "trailer section too large")
    stop = len(buf) - 1 if buf[-1] == 13 else len(buf)
    if not check_line_ends(buf[:stop]):
        raise H1Error(400, "bare CR or LF in the trailer section")
    return False

def take_trailers(conn: Any, buf: bytearray, end: int, events: list[Event]) -> bool:
    """The whole trailer section (``end``: where its CRLFCRLF starts): MessageComplete with them."""
    if end + 4 > conn.config.max_header_bytes:
        raise H1Error(431, "trailer section too large")
    block = bytes(buf[:end])
    del buf[:end + 4]
    if not check_line_ends(block):
        raise H1Error(400, "bare CR or LF in the trailer section")
    trailers = tuple(parse_fields("\r\n" + block.decode("latin-1"), 0, conn.config.max_headers))
    conn._recv_to(Recv.DONE)
    events.append(MessageComplete(stream_id=conn._stream_id, trailers=trailers))
    return True

def read_upgrade(conn: Any, events: list[Event]) -> bool:
    """h2c upgrade (RFC 7540 §3.2): the body is buffered whole, then 101 and ProtocolSwitched."""
    buf = conn._buf
    n = conn._left
    if len(buf) < n:
        return False
    req = conn._req
    body = bytes(buf[:n])
    leftover = bytes(buf[n:])
    buf.clear()
    conn._out.append(SWITCHING)
    conn._recv_to(Recv.CLOSED)
    request = RequestReceived(
        stream_id=1, method=req.method, target=req.target, authority=req.host,
        scheme=conn.scheme, http_version=req.version, headers=req.headers, end_stream=True)
    events.append(ProtocolSwitched(protocol="h2c", settings_header=req.upgrade_h2c,
                                   request=request, body=body, leftover=leftover))
    return False
