"""HTTP/2 frame layout (RFC 9113 §4.1, §6): constants, the 9-octet header, and frame builders.

Every frame is a 9-octet header -- length (24 bits), type (8), flags (8), a reserved bit and a
31-bit stream identifier -- followed by ``length`` octets of payload::

    +-----------------------------------------------+
    |                 Length (24)                   |
    +---------------+---------------+---------------+
    |   Type (8)    |   Flags (8)   |
    +-+-------------+---------------+-------------------------------+
    |R|                 Stream Identifier (31)                      |
    +=+=============================================================+
    |                   Frame Payload (0...)                      ...
    +---------------------------------------------------------------+

Who parses and builds what, and why:

- Control frames (SETTINGS, PING, GOAWAY, RST_STREAM, WINDOW_UPDATE, PRIORITY) are parsed and
  built with ``hyperframe`` (:func:`parse_control` and the ``*_frame`` builders below). They are
  rare next to requests, so the library's cost does not show.
- The hot path -- the 9-octet header of every frame, and HEADERS, CONTINUATION and DATA -- is
  framed by hand here and in ``h2_core``: measured on this machine (python 3.11, hyperframe
  6.1), hyperframe parses a frame in about 3.5 µs and builds one in about 2.4 µs, against
  0.4 / 0.2 µs for the three integer reads and the byte concatenation below; a small response
  is two frames out and one or two in, so by hand it is several times cheaper per request.

The error to answer depends on the frame *and* the stream state (RFC 9113 §5.4), so the
connection checks stream ids and lengths before it asks hyperframe for the fields. The tests
build every frame they send with ``hyperframe`` and read every frame we send with it.
"""

from __future__ import annotations

import enum
import struct
from typing import TypeVar

from hyperframe.exceptions import InvalidDataError, InvalidFrameError
from hyperframe.frame import (Frame, GoAwayFrame, PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from .errors import ErrorCode, H2ConnectionError

__all__ = [
    "FrameType",
    "Flag",
    "PREFACE",
    "FRAME_HEADER_SIZE",
    "MAX_STREAM_ID",
    "frame",
    "data_frames",
    "FRAME_HEADER",
    "header_block_frames",
    "rst_stream_frame",
    "settings_frame",
    "settings_ack_frame",
    "ping_frame",
    "goaway_frame",
    "window_update_frame",
    "strip_padding",
    "parse_control",
    "FrameSizeError",
    "DATA",
    "HEADERS",
    "SETTINGS",
    "CONTINUATION",
    "END_STREAM",
    "END_HEADERS",
    "PADDED",
    "PRIORITY",
    "ACK",
    "BARE_BLOCK_MASK",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The client connection preface, RFC 9113 §3.4 (24 octets)."""

FRAME_HEADER_SIZE = 9
MAX_STREAM_ID = 2**31 - 1


class FrameType(enum.IntEnum):
    """Frame types of RFC 9113 §6; any other type is an extension, ignored (§5.5)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag(enum.IntFlag):
    """Frame flags of DATA and HEADERS (RFC 9113 §6.1, §6.2; END_HEADERS also on CONTINUATION).
    SETTINGS and PING use the same bit 0x1 as ACK (§6.5, §6.7): :data:`ACK`, not a member here,
    so that no flag is an alias of another."""

    END_STREAM = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


#: The frame types and flags as plain ints, for the hot paths (a module global, not an enum
#: attribute lookup): compare ``type_ != CONTINUATION``, test ``flags & END_STREAM``.
DATA, HEADERS, SETTINGS, CONTINUATION = int(FrameType.DATA), int(FrameType.HEADERS), int(FrameType.SETTINGS), \
    int(FrameType.CONTINUATION)
END_STREAM, END_HEADERS, PADDED, PRIORITY = int(Flag.END_STREAM), int(Flag.END_HEADERS), int(Flag.PADDED), \
    int(Flag.PRIORITY)
#: SETTINGS / PING: this frame acknowledges the peer's (§6.5, §6.7); the bit of END_STREAM
ACK = 0x1
#: the flags of a HEADERS frame whose payload is the whole header block: END_HEADERS, and neither
#: PADDED nor PRIORITY (``flags & BARE_BLOCK_MASK == END_HEADERS``)
BARE_BLOCK_MASK = END_HEADERS | PADDED | PRIORITY
_END_STREAM = END_STREAM
_END_HEADERS = END_HEADERS
#: the 9-octet frame header (§4.1) as one struct: ``(length << 8 | type, flags, stream id)``,
#: packed by every builder below (the one way a frame header is built) and unpacked by the
#: connection's frame loop (``unpack_from``)
FRAME_HEADER = struct.Struct(">IBI")


def frame(type_: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One serialized frame: the 9-octet header (§4.1) followed by ``payload``.

    The caller guarantees ``len(payload)`` fits the peer's SETTINGS_MAX_FRAME_SIZE.
    """
    return _pack(len(payload) << 8 | type_, flags, stream_id) + payload


_pack = FRAME_HEADER.pack


def data_frames(stream_id: int, data: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """DATA frames (§6.1) carrying ``data`` split at ``max_frame_size`` octets; END_STREAM on the
    last one. An empty ``data`` gives one empty frame."""
    n = len(data)
    if n <= max_frame_size:
        return _pack(n << 8, _END_STREAM if end_stream else 0, stream_id) + data
    parts = []
    view = memoryview(data)
    for start in range(0, n, max_frame_size):
        chunk = view[start:start + max_frame_size]
        last = start + max_frame_size >= n
        parts.append(_pack(len(chunk) << 8 | DATA, _END_STREAM if (last and end_stream) else 0, stream_id))
        parts.append(chunk)
    return b"".join(parts)


def header_block_frames(stream_id: int, block: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """A HEADERS frame (§6.2) and as many CONTINUATION frames (§6.10) as ``block`` needs;
    END_HEADERS on the last one, END_STREAM on the HEADERS frame when asked."""
    n = len(block)
    if n <= max_frame_size:
        return _pack(n << 8 | HEADERS, _END_HEADERS | _END_STREAM if end_stream else _END_HEADERS, stream_id) + block
    parts = []
    for start in range(0, n, max_frame_size):
        chunk = block[start:start + max_frame_size]
        flags = _END_HEADERS if start + max_frame_size >= n else 0
        if start == 0:
            type_ = HEADERS
            flags |= _END_STREAM if end_stream else 0
        else:
            type_ = CONTINUATION
        parts.append(_pack(len(chunk) << 8 | type_, flags, stream_id) + chunk)
    return b"".join(parts)


def rst_stream_frame(stream_id: int, error_code: int) -> bytes:
    """RST_STREAM (§6.4): 4-octet error code."""
    return RstStreamFrame(stream_id, error_code=int(error_code)).serialize()


def settings_frame(settings: dict[int, int]) -> bytes:
    """SETTINGS (§6.5): six octets per parameter (16-bit identifier, 32-bit value)."""
    return SettingsFrame(0, settings={int(k): int(v) for k, v in settings.items()}).serialize()


_SETTINGS_ACK = SettingsFrame(0, flags=["ACK"]).serialize()


def settings_ack_frame() -> bytes:
    """An empty SETTINGS frame with ACK (§6.5.3)."""
    return _SETTINGS_ACK


def ping_frame(opaque: bytes, ack: bool = False) -> bytes:
    """PING (§6.7): 8 opaque octets, echoed back with ACK."""
    return PingFrame(0, opaque_data=opaque, flags=["ACK"] if ack else []).serialize()


def goaway_frame(last_stream_id: int, error_code: int, debug: bytes = b"") -> bytes:
    """GOAWAY (§6.8): last stream id (31 bits), error code, optional debug data."""
    return GoAwayFrame(0, last_stream_id=last_stream_id, error_code=int(error_code),
                       additional_data=debug).serialize()


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """WINDOW_UPDATE (§6.9): 31-bit increment, 1..2^31-1 octets."""
    return WindowUpdateFrame(stream_id, window_increment=increment).serialize()


class FrameSizeError(Exception):
    """A control frame's payload has the wrong length for its type (FRAME_SIZE_ERROR, §4.2)."""


_F = TypeVar("_F", bound=Frame)


def parse_control(cls: type[_F], stream_id: int, payload: bytes) -> _F:
    """The ``hyperframe`` frame of type ``cls`` (SettingsFrame, PingFrame, GoAwayFrame,
    RstStreamFrame, WindowUpdateFrame, PriorityFrame) with ``payload`` parsed.

    A WINDOW_UPDATE whose increment is 0 or has the reserved bit set is returned, not refused:
    the reserved bit is ignored (§6.9) and what a 0 means depends on the stream (§6.9.1).

    Raises:
        FrameSizeError: the payload's length is wrong for the type (RST_STREAM not 4, PING not
            8, PRIORITY not 5, WINDOW_UPDATE not 4, GOAWAY under 8, SETTINGS not 6k).
    """
    frame = cls(stream_id)
    try:
        frame.parse_body(memoryview(payload))
    except InvalidFrameError as exc:
        raise FrameSizeError(str(exc)) from None
    except InvalidDataError:
        if cls is not WindowUpdateFrame:
            raise
        frame.window_increment &= 0x7FFFFFFF  # type: ignore[attr-defined]
    if cls is PriorityFrame and len(payload) != 5:  # hyperframe only refuses longer ones
        raise FrameSizeError("PRIORITY length is not 5")
    if cls is WindowUpdateFrame and len(payload) != 4:
        raise FrameSizeError("WINDOW_UPDATE length is not 4")
    return frame


def strip_padding(payload: bytes, flags: int, fixed: int = 0) -> tuple[int, int]:
    """Bounds of the content of a possibly padded DATA/HEADERS payload (§6.1, §6.2).

    Args:
        payload: the frame payload.
        flags: the frame flags (PADDED is 0x8).
        fixed: octets of fixed fields after the Pad Length (5 for HEADERS with PRIORITY).

    Returns:
        ``(start, end)``: the content (after Pad Length and the fixed fields, before padding) is
        ``payload[start:end]``.

    Raises:
        H2ConnectionError: PROTOCOL_ERROR when the padding is as long as the rest of the payload or
            longer, or the payload is shorter than its fixed fields.
    """
    n = len(payload)
    if flags & PADDED:
        if n < 1 + fixed:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padded frame too short")
        pad = payload[0]
        end = n - pad
        start = 1 + fixed
        if end < start:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds the frame payload")
        return start, end
    if n < fixed:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "frame too short")
    return fixed, n
