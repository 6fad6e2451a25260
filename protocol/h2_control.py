"""Connection-level frames of HTTP/2: SETTINGS (RFC 9113 §6.5), PING (§6.7), GOAWAY (§6.8),
WINDOW_UPDATE (§6.9), PUSH_PROMISE refusal (§8.4); a mixin of ``h2_core.H2Core``.

The mixin works on ``H2Core``'s state (``_out``, ``_streams``, the peer's settings and our send
windows) and raises ``H2ConnectionError`` / ``H2StreamError``, which ``H2Core.receive_data``
answers with GOAWAY / RST_STREAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from hyperframe.frame import GoAwayFrame, PingFrame, WindowUpdateFrame

from . import events as ev
from .errors import ErrorCode, H2ConnectionError, H2StreamError
from .h2_frames import ACK, FrameSizeError, parse_control, ping_frame, settings_ack_frame
from .h2_settings import MAX_WINDOW, H2Config, SettingCode, parse_settings
from .h2_streams import CAN_SEND, StreamInput

if TYPE_CHECKING:
    from .h2_streams import H2Stream

__all__ = ["ControlFrames"]

_PROTO = ErrorCode.PROTOCOL_ERROR
_I = StreamInput


class ControlFrames:
    """Handlers of the connection-level frames (see the module docstring).

    The state they read and write is declared here and owned by ``H2Core``, which sets it in
    its ``__init__``; the handlers are in this module only to keep ``h2_core`` readable.
    """

    config: H2Config
    _out: bytearray                     # bytes to send
    _streams: dict[int, "H2Stream"]     # open and half-closed streams
    _client: bool                       # the role: which SETTINGS the peer may send
    _pending_acks: int                  # SETTINGS/PING ACKs queued since the last flush
    _peer_settings: dict[int, int]      # the peer's settings (§6.5.2)
    _peer_initial_window: int           # its SETTINGS_INITIAL_WINDOW_SIZE, octets
    _peer_max_frame: int                # its SETTINGS_MAX_FRAME_SIZE, octets
    _peer_max_streams: int              # its SETTINGS_MAX_CONCURRENT_STREAMS
    _send_window: int                   # our connection send window, octets (§6.9)
    _encoder: Any                       # the HPACK encoder (its table follows the peer's setting)
    _encoded: dict                      # the encoder's cache, cleared when the table size changes
    _late_frame: Callable[[int, StreamInput], None]  # H2Core's answer to a frame on a closed stream

    def _ack_queued(self) -> None:
        self._pending_acks += 1
        if self._pending_acks > self.config.max_pending_acks:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many SETTINGS/PING frames")

    def _on_settings(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if sid != 0:
            raise H2ConnectionError(_PROTO, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        self._apply_settings(payload, events)
        self._out += settings_ack_frame()
        self._ack_queued()

    def _apply_settings(self, payload: bytes, events: list) -> None:
        """Apply the peer's SETTINGS payload (§6.5.2, §6.9.2); ``parse_settings`` raises."""
        grew = False
        for code, value in parse_settings(payload, from_server=self._client):
            self._peer_settings[code] = value
            if code == SettingCode.INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                if delta:
                    for s in self._streams.values():
                        s.send_window += delta
                        if s.send_window > MAX_WINDOW:
                            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1")
                    grew = grew or delta > 0
            elif code == SettingCode.MAX_FRAME_SIZE:
                self._peer_max_frame = value
            elif code == SettingCode.HEADER_TABLE_SIZE:
                size = min(value, 65536)
                if size != self._encoder.header_table_size:
                    self._encoder.header_table_size = size
                    self._encoded.clear()
            elif code == SettingCode.MAX_CONCURRENT_STREAMS:
                self._peer_max_streams = value
        if grew and self._streams:
            self._window_opened(0, events)

    def _on_push_promise(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        raise H2ConnectionError(_PROTO, "PUSH_PROMISE (push is disabled, §8.4)")

    def _on_ping(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if sid != 0:
            raise H2ConnectionError(_PROTO, "PING on a stream")
        try:
            opaque = parse_control(PingFrame, 0, payload).opaque_data
        except FrameSizeError:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING length is not 8") from None
        if flags & ACK:
            self._on_ping_ack(opaque, events)
            return
        self._out += ping_frame(opaque, ack=True)
        self._ack_queued()

    def _on_ping_ack(self, payload: bytes, events: list) -> None:
        """Hook: our PING was answered."""

    def _on_goaway_frame(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if sid != 0:
            raise H2ConnectionError(_PROTO, "GOAWAY on a stream")
        try:
            frame = parse_control(GoAwayFrame, 0, payload)
        except FrameSizeError:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY shorter than 8") from None
        self._on_goaway(frame.last_stream_id & 0x7FFFFFFF, frame.error_code,
                        frame.additional_data.decode("ascii", "replace")[:200], events)

    def _on_goaway(self, last_stream_id: int, error_code: int, debug: str, events: list) -> None:
        raise NotImplementedError

    def _on_window_update(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        try:
            inc = parse_control(WindowUpdateFrame, sid, payload).window_increment
        except FrameSizeError:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4") from None
        if sid == 0:
            if inc == 0:
                raise H2ConnectionError(_PROTO, "WINDOW_UPDATE of 0 on the connection")
            self._send_window += inc
            if self._send_window > MAX_WINDOW:
                raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1")
            if self._streams:
                self._window_opened(0, events)
            return
        s = self._streams.get(sid)
        if s is None:
            return self._late_frame(sid, _I.RECV_WINDOW_UPDATE)
        if inc == 0:
            raise H2StreamError(sid, _PROTO, "WINDOW_UPDATE of 0")
        s.send_window += inc
        if s.send_window > MAX_WINDOW:
            raise H2StreamError(sid, ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1")
        if s.state in CAN_SEND:
            self._window_opened(sid, events)

    def _window_opened(self, sid: int, events: list) -> None:
        events.append(ev.FlowControlUpdated(stream_id=sid))
