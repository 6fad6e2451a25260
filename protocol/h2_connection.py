"""HTTP/2 server role (RFC 9113), sans-IO: ``H2Connection``.

Theory of operation
-------------------
::

    engine ──bytes──> receive_data ──> preface check (§3.4) ──> frames (h2_core) ──> events
                                                                   │
    app/glue: send_headers / send_data / send_end / reset_stream ──┴──> data_to_send() ──> engine

1. Construction queues our SETTINGS (MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE,
   MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE, HEADER_TABLE_SIZE), so the engine can write it at once.
   The first bytes in must be the client preface ``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n`` and a
   SETTINGS frame; anything else is a connection error PROTOCOL_ERROR.
2. A request is a header block on a new odd stream id above every earlier one (§5.1.1). It is
   decoded (HPACK, always), checked against §8 (``h2_headers``: malformed -> RST_STREAM
   PROTOCOL_ERROR), refused past MAX_CONCURRENT_STREAMS (RST_STREAM REFUSED_STREAM), answered 431
   past MAX_HEADER_LIST_SIZE (§10.5.1), and otherwise reported as ``RequestReceived``; DATA
   becomes ``DataReceived`` and END_STREAM ``MessageComplete`` (content-length checked, §8.1.1).
3. The glue answers with ``send_headers`` (``:status`` + fields; connection-specific fields are
   dropped), ``send_data`` within ``max_send_size`` and ``send_end``. A stream closes when both
   sides have ended it or either reset it.
4. Abuse is counted, never timed (no clocks here): rapid resets, SETTINGS/PING floods, empty DATA
   floods, repeated refused streams and oversized header blocks end the connection with GOAWAY
   ENHANCE_YOUR_CALM (§10.5, CVE-2023-44487, CVE-2019-9512/9518, CVE-2024-27316).
5. Graceful shutdown (§6.8): ``start_shutdown`` sends GOAWAY(2^31-1) and a PING; its ACK proves
   the client has seen the GOAWAY, so the final GOAWAY names the real last stream. Streams up to
   it finish; later ones are ignored; ``closed`` turns true when none is left.
6. h2c upgrade (RFC 7540 §3.2): ``from_upgrade`` applies HTTP2-Settings and opens stream 1
   half-closed (remote) for the request that came over HTTP/1.1; the preface still follows.
"""

from __future__ import annotations

import base64
import enum
import re
from collections import deque

from . import events as ev
from .errors import ErrorCode, H2ConnectionError, H2StreamError, LocalProtocolError
from .h2_core import H2Core
from .h2_frames import DATA, END_HEADERS, END_STREAM, FRAME_HEADER, HEADERS, MAX_STREAM_ID, PREFACE, data_frames, goaway_frame, header_block_frames, ping_frame
from .h2_headers import encode_fields, header_list_size, validate_request
from .h2_settings import H2Config
from .h2_streams import CAN_SEND, SEND_WHOLE, CloseReason, H2Stream, StreamInput, StreamState

__all__ = ["H2Connection", "Shutdown", "ShutdownInput", "SHUTDOWN_TRANSITIONS", "H2Config"]

_SHUTDOWN_PING = b"shutdown"
_CLOSED = StreamState.CLOSED
_OPEN = StreamState.OPEN
_HALF_CLOSED_REMOTE = StreamState.HALF_CLOSED_REMOTE
_pack = FRAME_HEADER.pack
_B64URL = re.compile(r"[A-Za-z0-9_-]*=*")


class Shutdown(enum.Enum):
    """Where a graceful stop of the connection stands (RFC 9113 §6.8, two-step GOAWAY)."""

    RUNNING = "serving; no GOAWAY sent"
    FIRST_GOAWAY_SENT = "GOAWAY(2^31-1) and a PING sent; new streams still accepted"
    FINAL_GOAWAY_SENT = "GOAWAY(last stream id) sent on the PING's ACK; ends with the last stream"


class ShutdownInput(enum.Enum):
    """What moves a graceful stop on."""

    START = "start_shutdown() called"
    PING_ACK = "the ACK of the shutdown PING arrived"


#: (state, input) -> next state; a missing entry means the input changes nothing.
SHUTDOWN_TRANSITIONS: dict[tuple[Shutdown, ShutdownInput], Shutdown] = {
    (Shutdown.RUNNING, ShutdownInput.START): Shutdown.FIRST_GOAWAY_SENT,
    (Shutdown.FIRST_GOAWAY_SENT, ShutdownInput.PING_ACK): Shutdown.FINAL_GOAWAY_SENT,
}



def _response_fields(status: int, headers: ev.Headers) -> list[tuple[bytes, bytes]]:
    """A response head's checked field list, ``:status`` first (see ``encode_fields``)."""
    return encode_fields([(b":status", b"%d" % status)], headers)

class H2Connection(H2Core):
    """Server role of one HTTP/2 connection (``protocol.base.ServerConnection``).

    Args:
        config: what we advertise and the limits we enforce (``H2Config``); defaults if None.

    Attributes:
        http_version: ``"2"``.
        closed: true once the connection is over (error, GOAWAY, EOF, or graceful shutdown done).
        open_stream_count: streams open or half-closed.
    """

    _client = False

    def __init__(self, config: H2Config | None = None) -> None:
        super().__init__(config)
        self._need_preface = True
        self._preface_got = b""
        self._shutdown = Shutdown.RUNNING
        self._goaway_last = MAX_STREAM_ID
        self._refused = 0
        self._resets: deque[int] = deque(maxlen=self.config.rapid_reset_max + 1)

    @classmethod
    def from_upgrade(cls, settings_header: str, request: ev.RequestReceived,
                     config: H2Config | None = None) -> "H2Connection":
        """A connection taking over after ``Upgrade: h2c`` (RFC 7540 §3.2).

        Args:
            settings_header: the HTTP2-Settings value: a base64url SETTINGS payload (§3.2.1).
            request: the HTTP/1.1 request; it becomes stream 1, half-closed (remote), awaiting
                the response (send it with ``send_headers(1, ...)``).
            config: as for the constructor.

        Returns:
            The connection; it still expects the client preface from the peer. An invalid
            HTTP2-Settings value makes it a connection error (GOAWAY PROTOCOL_ERROR queued,
            ``closed`` true, the event returned by the next ``receive_data``/``next_events``).
        """
        conn = cls(config)
        s = conn._new_stream(1, StreamState.HALF_CLOSED_REMOTE)
        s.method = request.method
        conn._last_peer_stream = 1
        try:
            value = settings_header.strip()
            if not _B64URL.fullmatch(value):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HTTP2-Settings is not base64url")
            value = value.rstrip("=")
            payload = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            conn._apply_settings(payload, [])
        except (H2ConnectionError, ValueError) as e:
            code = e.error_code if isinstance(e, H2ConnectionError) else ErrorCode.PROTOCOL_ERROR
            conn._connection_error(code, "invalid HTTP2-Settings", conn._events)
        return conn

    # -- sending ------------------------------------------------------------------------------

    def send_headers(self, stream_id: int, status: int, headers: ev.Headers, *, end_stream: bool = False) -> None:
        """Send the response head (§8.3.2): HEADERS (+ CONTINUATION) with ``:status`` first.

        ``headers`` are lowercase ``(name, value)`` pairs; connection-specific fields
        (connection, keep-alive, proxy-connection, transfer-encoding, upgrade) are dropped.

        Raises:
            LocalProtocolError: the stream is not awaiting a response, the head was sent already,
                ``status`` is not 200..999, or a field is invalid (uppercase, CR, LF, NUL).
        """
        s = self._final_head_stream(stream_id, status)
        if s is None:
            return
        block = self._head_block(status, headers)
        s.head_sent = True
        self._send_block(s, block, end_stream)

    def send_response(self, stream_id: int, status: int, headers: ev.Headers, body: bytes) -> None:
        """Send a whole response at once (§8.1): HEADERS (+ CONTINUATION), then ``body`` in DATA
        frames, the last with END_STREAM; only HEADERS with END_STREAM when ``body`` is empty.
        The same as ``send_headers`` + ``send_data`` + ``send_end``, one frame fewer.

        Raises:
            LocalProtocolError: as ``send_headers``.
            WindowExceeded: (a LocalProtocolError) ``len(body)`` exceeds ``max_send_size``;
                nothing was queued (send the head, then the body in parts with ``send_data``).
        """
        # The checks of _final_head_stream and _check_window, inlined (every response passes
        # here); any doubt goes to them, which raise or return None as documented.
        s = self._streams.get(stream_id)
        if s is None or s.head_sent or s.state not in CAN_SEND or not 200 <= status <= 999:
            s = self._final_head_stream(stream_id, status)
            if s is None:
                return
        n = len(body)
        if n > s.send_window or n > self._send_window:
            self._check_window(s, n)
        block = self._head_block(status, headers)
        s.head_sent = True
        max_frame = self._peer_max_frame
        if n:
            s.send_window -= n
            self._send_window -= n
            if len(block) <= max_frame and n <= max_frame:  # one HEADERS and one DATA (§6.2, §6.1)
                self._out += (_pack(len(block) << 8 | HEADERS, END_HEADERS, stream_id) + block
                              + _pack(n << 8 | DATA, END_STREAM, stream_id) + body)
            else:
                self._out += header_block_frames(stream_id, block, False, max_frame) + data_frames(
                    stream_id, body, True, max_frame)
        else:
            self._out += header_block_frames(stream_id, block, True, max_frame)
        s.state = new = SEND_WHOLE[s.state]
        if new is _CLOSED:  # _close_stream, inlined (the stream is in the table: checked above)
            del self._streams[stream_id]
            closed = self._closed_streams  # _remember_closed, inlined
            closed[stream_id] = CloseReason.END_STREAM
            if len(closed) > self.config.max_closed_streams:
                closed.popitem(last=False)
            self._stream_closed(s)

    def _final_head_stream(self, stream_id: int, status: int) -> H2Stream | None:
        """The stream a final response head is to go out on; ``None`` when it was reset.

        Raises:
            LocalProtocolError: the stream cannot send, its head was sent, or ``status`` is not
                200..999.
        """
        s = self._sendable(stream_id)
        if s is None:
            return None
        if s.head_sent:
            raise LocalProtocolError(f"response head already sent on stream {stream_id}")
        if not 200 <= status <= 999:
            raise LocalProtocolError("a final status is 200..999 (send 1xx with send_informational)")
        return s

    def _head_block(self, status: int, headers: ev.Headers) -> bytes:
        """The HPACK block of a response head, cached by ``(status, headers)`` as they were
        given: a head seen before skips the field checks (it passed them) and the encoder
        (see ``_encode_block`` for when a block may be reused)."""
        key = (status, headers if type(headers) is tuple else tuple(headers))
        try:
            block = self._encoded.data.get(key)  # _encode_keyed's lookup, inlined: the common case
        except TypeError:
            block = None
        return block if block is not None else self._encode_keyed(key, _response_fields, status, headers)

    def send_informational(self, stream_id: int, status: int, headers: ev.Headers = ()) -> None:
        """Send a 1xx response (100 Continue, 103 Early Hints) before the final one (§8.1).

        Raises:
            LocalProtocolError: status not 100..199 or 101, the final head was sent, or the
                stream cannot send.
        """
        s = self._sendable(stream_id)
        if s is None:
            return
        if not 100 <= status <= 199 or status == 101:
            raise LocalProtocolError("informational status must be 1xx other than 101")
        if s.head_sent:
            raise LocalProtocolError("informational response after the final head")
        fields = encode_fields([(b":status", b"%d" % status)], headers)
        self._send_block(s, self._encode_block(fields), False)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send part of the response body (see ``H2Core.send_data``).

        Raises:
            LocalProtocolError: the head was not sent, the window is too small, or the stream
                cannot send.
        """
        s = self._streams.get(stream_id)
        if s is not None and not s.head_sent:
            raise LocalProtocolError("send_headers before send_data")
        super().send_data(stream_id, data, end_stream=end_stream)

    def send_end(self, stream_id: int, trailers: ev.Headers = ()) -> None:
        """End the response: empty DATA with END_STREAM, or trailers with END_STREAM.

        Raises:
            LocalProtocolError: the head was not sent, or the stream cannot send.
        """
        s = self._streams.get(stream_id)
        if s is not None and not s.head_sent:
            raise LocalProtocolError("send_headers before send_end")
        super().send_end(stream_id, trailers)

    def start_shutdown(self) -> None:
        """Begin a graceful stop (§6.8): GOAWAY(2^31-1, NO_ERROR) and a PING; the PING's ACK
        triggers the final GOAWAY with the last stream id actually received."""
        if self._terminated or not self._shutdown_step(ShutdownInput.START):
            return
        self._out += goaway_frame(MAX_STREAM_ID, ErrorCode.NO_ERROR)
        self._out += ping_frame(_SHUTDOWN_PING)

    def _shutdown_step(self, inp: ShutdownInput) -> bool:
        """Apply ``inp`` to the graceful-stop state (:data:`SHUTDOWN_TRANSITIONS`); False when
        it changes nothing (a second ``start_shutdown``, an ACK of another PING)."""
        nxt = SHUTDOWN_TRANSITIONS.get((self._shutdown, inp))
        if nxt is None:
            return False
        self._shutdown = nxt
        return True

    @property
    def awaiting_frame_bytes(self) -> bool:
        """True while part of the client preface, of a frame or of a header block is buffered."""
        return bool(self._preface_got) or super().awaiting_frame_bytes

    @property
    def shutting_down(self) -> bool:
        """True once ``start_shutdown`` was called."""
        return self._shutdown is not Shutdown.RUNNING

    # -- receiving ----------------------------------------------------------------------------

    def _before_frames(self, buf: bytes) -> bytes:
        if not self._need_preface:
            return buf
        got = self._preface_got + buf
        n = min(len(got), 24)
        if got[:n] != PREFACE[:n]:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid connection preface")
        if len(got) < 24:
            self._preface_got = got
            return b""
        self._need_preface = False
        self._preface_got = b""
        return got[24:]

    def _on_header_block(self, sid: int, fields: list, end_stream: bool, self_dep: bool, events: list,
                         key: bytes | None = None) -> None:
        s = self._streams.get(sid)
        if s is not None:
            if self_dep:
                raise H2StreamError(sid, ErrorCode.PROTOCOL_ERROR, "stream depends on itself (§5.3.1)")
            self._on_trailers(s, fields, end_stream, events)
            return
        if not sid & 1:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "client opened an even stream id")
        if sid <= self._last_peer_stream:
            reason = self._closed_streams.get(sid)
            if reason is None:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "stream id not above the previous ones")
            self._late_frame(sid, StreamInput.RECV_HEADERS)
            return
        self._last_peer_stream = sid
        if sid > self._goaway_last:
            self._remember_closed(sid, CloseReason.SENT_RESET)  # after our final GOAWAY: ignored
            return
        if self_dep:
            raise H2StreamError(sid, ErrorCode.PROTOCOL_ERROR, "stream depends on itself (§5.3.1)")
        if len(self._streams) >= self.config.max_concurrent_streams:
            self._refused += 1
            if self._refused > self.config.max_refused_streams:
                raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many refused streams")
            raise H2StreamError(sid, ErrorCode.REFUSED_STREAM, "MAX_CONCURRENT_STREAMS exceeded")
        valid = self._validated.data.get(key) if key is not None else None
        if valid is None:
            valid = (validate_request(sid, fields), header_list_size(fields))
            if key is not None:
                self._validated.remember(key, valid)
        head, size = valid  # type: ignore[misc]
        self._streams[sid] = s = H2Stream(sid, _OPEN, self._peer_initial_window, self.config.initial_window_size)
        s.method = head.method
        s.content_length = cl = head.content_length
        if size > self.config.max_header_list_size:
            self._refuse_431(s, end_stream)
            return
        events.append(ev.request_received(sid, head.method, head.path, head.authority, head.scheme, "2",
                                          head.headers, False, end_stream))
        if end_stream:
            if cl:  # content-length > 0 and no DATA: _recv_end answers the error
                self._recv_end(s, (), events)
            else:  # _recv_end, inlined: open -> half-closed (remote) (§5.1), the request complete
                s.state = _HALF_CLOSED_REMOTE
                events.append(ev.message_complete(sid, ()))

    def _refuse_431(self, s: H2Stream, end_stream: bool) -> None:
        """Answer 431 to a request whose header list exceeds our MAX_HEADER_LIST_SIZE (§10.5.1)."""
        if end_stream:
            self._transition(s, StreamInput.RECV_END_STREAM)
        s.head_sent = True
        self._send_block(s, self._encode_block([(b":status", b"431"), (b"content-length", b"0")]), True)
        if s.stream_id in self._streams:
            self.reset_stream(s.stream_id, ErrorCode.NO_ERROR)

    def _peer_reset(self, s: H2Stream) -> None:
        self._count_reset(s.stream_id, "too many streams reset by the client (rapid reset)")

    def _reset_for_peer(self, sid: int) -> None:
        if sid & 1:  # a client stream the client made us reset (a bad frame on it)
            self._count_reset(sid, "too many streams reset because of the client (MadeYouReset)")

    def _count_reset(self, sid: int, reason: str) -> None:
        """One reset toward the budget shared by the client's own resets (CVE-2023-44487) and
        the ones its frames cause us to send (CVE-2025-8671), as nghttp2's glitch counter and
        h2o's reset budget do: more than ``rapid_reset_max`` among the client's last
        ``rapid_reset_window`` streams ends the connection with GOAWAY(ENHANCE_YOUR_CALM).

        Raises:
            H2ConnectionError: ENHANCE_YOUR_CALM past the budget.
        """
        resets = self._resets
        resets.append(sid)
        if len(resets) == resets.maxlen and (self._last_peer_stream - resets[0]) // 2 < self.config.rapid_reset_window:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, reason)

    def _on_ping_ack(self, payload: bytes, events: list) -> None:
        if payload == _SHUTDOWN_PING and self._shutdown_step(ShutdownInput.PING_ACK):
            self._goaway_last = self._last_peer_stream
            self._out += goaway_frame(self._goaway_last, ErrorCode.NO_ERROR)
            if not self._streams:
                self._terminated = True

    def _on_goaway(self, last_stream_id: int, error_code: int, debug: str, events: list) -> None:
        self._terminated = True
        events.append(ev.ConnectionTerminated(error_code=error_code, last_stream_id=last_stream_id,
                                              remote=True, reason=debug or "GOAWAY received"))

    def _stream_closed(self, s: H2Stream) -> None:
        if self._shutdown is Shutdown.FINAL_GOAWAY_SENT and not self._streams:
            self._terminated = True
