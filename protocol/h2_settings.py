"""HTTP/2 settings (RFC 9113 §6.5) and flow-control arithmetic (§5.2, §6.9), plus ``H2Config``.

Settings are a dict ``{SettingCode: int}``; the peer's start at the RFC defaults (§6.5.2) and change
as its SETTINGS frames arrive. Flow-control windows are plain ints in octets; a send window may be
negative after SETTINGS_INITIAL_WINDOW_SIZE shrinks (§6.9.2) and must never exceed 2^31-1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hyperframe.frame import SettingsFrame

from .errors import ErrorCode, H2ConnectionError
from .h2_frames import FrameSizeError, parse_control

__all__ = [
    "SettingCode",
    "DEFAULT_SETTINGS",
    "MAX_WINDOW",
    "MIN_MAX_FRAME_SIZE",
    "MAX_MAX_FRAME_SIZE",
    "H2Config",
    "parse_settings",
    "local_settings",
    "window_update_due",
]

MAX_WINDOW = 2**31 - 1
MIN_MAX_FRAME_SIZE = 2**14
MAX_MAX_FRAME_SIZE = 2**24 - 1


class SettingCode(enum.IntEnum):
    """SETTINGS parameters, RFC 9113 §6.5.2 (and RFC 8441's ENABLE_CONNECT_PROTOCOL)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8


DEFAULT_SETTINGS: dict[int, int] = {
    SettingCode.HEADER_TABLE_SIZE: 4096,
    SettingCode.ENABLE_PUSH: 1,
    SettingCode.MAX_CONCURRENT_STREAMS: MAX_WINDOW,  # "unlimited" (§6.5.2)
    SettingCode.INITIAL_WINDOW_SIZE: 65535,
    SettingCode.MAX_FRAME_SIZE: MIN_MAX_FRAME_SIZE,
    SettingCode.MAX_HEADER_LIST_SIZE: MAX_WINDOW,    # "unlimited"
}
"""Initial values of every parameter until a SETTINGS frame says otherwise (§6.5.2)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class H2Config:
    """What this endpoint advertises and the limits it enforces. Sizes are octets.

    Advertised (our SETTINGS frame, §6.5.2):
        max_concurrent_streams: streams the peer may open at once (server role); beyond it a new
            stream is refused with RST_STREAM(REFUSED_STREAM) (§5.1.2).
        initial_window_size: our receive window of each stream.
        connection_window_size: our receive window of the connection; raised from 65535 with a
            WINDOW_UPDATE on stream 0 at start when larger.
        max_frame_size: the largest frame payload we accept (§4.2).
        max_header_list_size: decoded header list size (names + values + 32 per field, §6.5.2);
            a larger request is answered 431 (§10.5.1).
        header_table_size: our HPACK decoder's dynamic table (RFC 7541 §4.2).

    Enforced without buffering unbounded data (§10.5):
        max_header_block_size: encoded HEADERS + CONTINUATION octets of one header block.
        max_continuation_frames: CONTINUATION frames in one header block.
        Past either: connection error ENHANCE_YOUR_CALM (the block cannot be skipped without
        decoding it, because HPACK state is shared by the whole connection, §4.3).

    Abuse limits, all counted (no clocks); past them GOAWAY(ENHANCE_YOUR_CALM), §10.5:
        rapid_reset_max, rapid_reset_window: more than ``rapid_reset_max`` streams reset before
            completing among the peer's last ``rapid_reset_window`` streams, whether the peer reset
            them (rapid reset, CVE-2023-44487) or made us reset them with a bad frame (a WINDOW_UPDATE
            of 0, a PRIORITY of the wrong length, DATA on a half-closed stream: MadeYouReset,
            CVE-2025-8671).
        max_pending_acks: SETTINGS/PING acknowledgements queued and not yet taken by
            ``data_to_send()`` (a SETTINGS or PING flood).
        max_empty_data_frames: consecutive empty DATA frames without END_STREAM.
        max_refused_streams: streams refused for exceeding MAX_CONCURRENT_STREAMS.
        max_closed_streams: closed streams remembered to tell §5.1's cases apart.
    """

    max_concurrent_streams: int = 100
    initial_window_size: int = 65535
    connection_window_size: int = 65535
    max_frame_size: int = MIN_MAX_FRAME_SIZE
    max_header_list_size: int = 65536
    header_table_size: int = 4096
    max_header_block_size: int = 65536
    max_continuation_frames: int = 32
    rapid_reset_max: int = 200
    rapid_reset_window: int = 1000
    max_pending_acks: int = 1000
    max_empty_data_frames: int = 100
    max_refused_streams: int = 100
    max_closed_streams: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.initial_window_size <= MAX_WINDOW:
            raise ValueError("initial_window_size out of range")
        if not 65535 <= self.connection_window_size <= MAX_WINDOW:
            raise ValueError("connection_window_size must be 65535..2^31-1")
        if not MIN_MAX_FRAME_SIZE <= self.max_frame_size <= MAX_MAX_FRAME_SIZE:
            raise ValueError("max_frame_size must be 2^14..2^24-1")


def local_settings(config: H2Config, *, client: bool) -> dict[int, int]:
    """The SETTINGS we send first (§3.4): only what differs from, or must be stated over, the
    defaults. Clients disable server push (§8.4)."""
    s: dict[int, int] = {}
    if client:
        s[SettingCode.ENABLE_PUSH] = 0
    else:
        s[SettingCode.MAX_CONCURRENT_STREAMS] = config.max_concurrent_streams
    s[SettingCode.HEADER_TABLE_SIZE] = config.header_table_size
    s[SettingCode.INITIAL_WINDOW_SIZE] = config.initial_window_size
    s[SettingCode.MAX_FRAME_SIZE] = config.max_frame_size
    s[SettingCode.MAX_HEADER_LIST_SIZE] = config.max_header_list_size
    return s


def parse_settings(payload: bytes, *, from_server: bool = False) -> list[tuple[int, int]]:
    """Decode and validate a SETTINGS payload (§6.5.1, §6.5.2).

    Args:
        payload: the frame payload, six octets per parameter.
        from_server: the sender is a server (then ENABLE_PUSH must be 0).

    Returns:
        ``[(code, value), ...]`` in order (later values of a repeated code win, §6.5.3);
        unknown codes are dropped (§6.5.2).

    Raises:
        H2ConnectionError: FRAME_SIZE_ERROR when the length is not a multiple of 6;
            PROTOCOL_ERROR for ENABLE_PUSH not 0/1 (or 1 from a server) or MAX_FRAME_SIZE outside
            2^14..2^24-1; FLOW_CONTROL_ERROR for INITIAL_WINDOW_SIZE above 2^31-1.
    """
    try:
        pairs = parse_control(SettingsFrame, 0, payload).settings
    except FrameSizeError:
        raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6") from None
    out = []
    for code, value in pairs.items():
        if code == SettingCode.ENABLE_PUSH:
            if value > 1 or (from_server and value):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid SETTINGS_ENABLE_PUSH")
        elif code == SettingCode.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large")
        elif code == SettingCode.MAX_FRAME_SIZE:
            if not MIN_MAX_FRAME_SIZE <= value <= MAX_MAX_FRAME_SIZE:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid SETTINGS_MAX_FRAME_SIZE")
        elif code == SettingCode.ENABLE_CONNECT_PROTOCOL:
            if value > 1:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid SETTINGS_ENABLE_CONNECT_PROTOCOL")
        elif code not in _KNOWN:
            continue
        out.append((code, value))
    return out


_KNOWN = frozenset(int(c) for c in SettingCode)


def window_update_due(window: int, initial: int) -> int:
    """The WINDOW_UPDATE increment to send for a receive window (§6.9), or 0 for none yet.

    The window is topped up to ``initial`` once it has fallen to half of it or below, so a
    stream of small DATA frames costs one WINDOW_UPDATE per half window rather than one each.

    Args:
        window: the receive window left, octets (>= 0).
        initial: the size it is kept at, octets.
    """
    if window <= initial // 2:
        return initial - window
    return 0
