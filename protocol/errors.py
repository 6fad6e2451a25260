"""Errors of the protocol package: each carries what the peer must be told.

HTTP/1.x errors carry the status to answer with (h11's ``error_status_hint``). HTTP/2 errors carry
the error code of RFC 9113 §7 and whether they are stream errors (answered with RST_STREAM, the
connection goes on) or connection errors (answered with GOAWAY, the connection ends), RFC 9113 §5.4.
"""

from __future__ import annotations

import enum

__all__ = [
    "ProtocolError",
    "LocalProtocolError",
    "WindowExceeded",
    "RemoteProtocolError",
    "H1Error",
    "ErrorCode",
    "H2StreamError",
    "H2ConnectionError",
]


class ProtocolError(Exception):
    """Base class of every error raised by ``protocol/``."""


class LocalProtocolError(ProtocolError):
    """This side tried something the protocol forbids (a programming error of the caller)."""


class WindowExceeded(LocalProtocolError):
    """HTTP/2 data larger than a flow-control window allows now (RFC 9113 §6.9.1): nothing was
    queued. Send at most ``max_send_size(stream_id)`` octets, the rest as the window opens."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class H1Error(RemoteProtocolError):
    """A malformed or unacceptable HTTP/1.x request.

    Attributes:
        status: the HTTP status to answer with (400, 408, 413, 414, 431, 501, 505, ...).
        reason: a short explanation, safe to send in the body (never echoes request bytes).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class ErrorCode(enum.IntEnum):
    """HTTP/2 error codes, RFC 9113 §7."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class H2StreamError(RemoteProtocolError):
    """A stream error (RFC 9113 §5.4.2): reset ``stream_id`` with ``error_code``; others go on."""

    def __init__(self, stream_id: int, error_code: ErrorCode, reason: str) -> None:
        super().__init__(f"stream {stream_id}: {error_code.name}: {reason}")
        self.stream_id = stream_id
        self.error_code = error_code
        self.reason = reason


class H2ConnectionError(RemoteProtocolError):
    """A connection error (RFC 9113 §5.4.1): send GOAWAY with ``error_code`` and close."""

    def __init__(self, error_code: ErrorCode, reason: str) -> None:
        super().__init__(f"{error_code.name}: {reason}")
        self.error_code = error_code
        self.reason = reason
