"""What the HTTP/2 server and client roles share: framing, settings, flow control, stream table.

Theory of operation
-------------------
``receive_data`` appends bytes to a buffer and cuts whole frames off it (RFC 9113 §4.1); a frame
longer than our SETTINGS_MAX_FRAME_SIZE is refused as soon as its 9-octet header is in, so no
more than one maximal frame is ever buffered. Each frame goes to ``_on_<type>``; handlers raise

- ``H2StreamError``: answered with RST_STREAM, reported as ``StreamReset(remote=False)``, and the
  loop goes on with the next frame (§5.4.2);
- ``H2ConnectionError``: answered with GOAWAY, reported as ``ConnectionTerminated``, and nothing
  more is read (§5.4.1).

Connection-level frames (SETTINGS, PING, GOAWAY, WINDOW_UPDATE) are handled by the
``h2_control.ControlFrames`` mixin; stream-level ones (DATA, HEADERS, CONTINUATION, PRIORITY,
RST_STREAM) here.

Header blocks (HEADERS/PUSH_PROMISE + CONTINUATION, §4.3) are gathered until END_HEADERS, then
decoded with HPACK *always* -- even for a stream about to be refused -- because the decoder's
dynamic table is shared by the whole connection; the role subclass gets the decoded block through
``_on_header_block``. While a block is open, any other frame is a connection error (§6.10).

Streams live in ``_streams`` while not closed and move along ``h2_streams.TRANSITIONS``. Closed
streams are remembered (bounded) with how they closed, which decides the answer to late frames
(§5.1 "closed"). Stream ids above the highest seen are idle (§5.1.1).

Flow control (§5.2, §6.9): every DATA octet (padding included) counts against our connection
and stream receive windows; we top them up with WINDOW_UPDATE once half is used, as the data is
delivered. Our send windows start from the peer's SETTINGS_INITIAL_WINDOW_SIZE and follow its
WINDOW_UPDATEs and settings changes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import hpack
from hyperframe.frame import PriorityFrame, RstStreamFrame

from . import events as ev
from .caches import BoundedCache
from .errors import ErrorCode, H2ConnectionError, H2StreamError, LocalProtocolError, WindowExceeded
from .h2_frames import (ACK, BARE_BLOCK_MASK, CONTINUATION, END_HEADERS, END_STREAM, FRAME_HEADER, PADDED, PRIORITY,
                        SETTINGS, FrameSizeError, data_frames, goaway_frame, header_block_frames,
                        parse_control, ping_frame, rst_stream_frame, settings_frame, strip_padding,
                        window_update_frame)
from .h2_control import ControlFrames
from .h2_headers import encode_fields, validate_trailers
from .h2_settings import MAX_WINDOW, DEFAULT_SETTINGS, H2Config, local_settings, window_update_due
from .h2_streams import (CAN_RECV, CAN_SEND, RECV_ERRORS, TRANSITIONS, CloseReason, H2Stream, StreamInput,
                         StreamState)

_unpack_header = FRAME_HEADER.unpack_from  # (length << 8 | type, flags, stream id) at an offset

__all__ = ["H2Core"]

_S = StreamState
_I = StreamInput
_PROTO = ErrorCode.PROTOCOL_ERROR
_HIGH_OCTETS = bytes(range(0x80, 0x100))


class H2Core(ControlFrames):
    """Shared machinery of ``H2Connection`` (server) and ``H2ClientConnection`` (client).

    Subclasses set ``_client`` and implement ``_on_header_block``, ``_on_goaway`` and may
    override ``_on_ping_ack`` and ``_stream_closed``.
    """

    http_version = "2"
    multiplexed = True
    _client = False
    _huffman = True

    def __init__(self, config: H2Config | None = None) -> None:
        self.config = c = config or H2Config()
        self._out = bytearray()
        self._buf = b""
        self._streams: dict[int, H2Stream] = {}
        self._closed_streams: OrderedDict[int, CloseReason] = OrderedDict()
        self._peer_settings = dict(DEFAULT_SETTINGS)
        self._peer_max_frame = 16384
        self._peer_initial_window = 65535
        self._peer_max_streams = MAX_WINDOW
        self._send_window = 65535
        self._recv_window = c.connection_window_size
        self._encoder = hpack.Encoder()
        self._decoder = hpack.Decoder(max_header_list_size=2 * c.max_header_list_size)
        self._decoder.max_allowed_table_size = c.header_table_size
        self._peer_parity = 0 if self._client else 1
        self._last_peer_stream = 0
        self._next_local_stream = 1 if self._client else 2
        self._terminated = False
        self._need_settings = True
        self._pending_acks = 0
        self._empty_data = 0
        self._hb_sid = 0
        self._hb_parts: list[bytes] = []
        self._hb_size = 0
        self._hb_count = 0
        self._hb_end_stream = False
        self._hb_self_dep = False
        self._events: list[ev.Event] = []
        # per connection (protocol/caches.py): decoded header blocks, encoded ones, validated heads
        self._decoded = BoundedCache(256)
        self._encoded = BoundedCache(256)
        self._validated = BoundedCache(256)
        self._handlers = (self._on_data, self._on_headers, self._on_priority, self._on_rst_stream,
                          self._on_settings, self._on_push_promise, self._on_ping, self._on_goaway_frame,
                          self._on_window_update, self._on_continuation)
        self._out += settings_frame(local_settings(c, client=self._client))
        if c.connection_window_size > 65535:
            self._out += window_update_frame(0, c.connection_window_size - 65535)

    # -- public, both roles ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True when the engine should close the socket once ``data_to_send()`` is written."""
        return self._terminated

    @property
    def awaiting_frame_bytes(self) -> bool:
        """True while part of a frame, or a header block without its END_HEADERS (§4.3), is
        buffered: the engine's request-head timeout applies (a slowloris over HTTP/2)."""
        return bool(self._buf) or self._hb_sid != 0

    @property
    def open_stream_count(self) -> int:
        """Streams open or half-closed (they count against MAX_CONCURRENT_STREAMS, §5.1.2)."""
        return len(self._streams)

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return bytes (a cheap look, nothing taken)."""
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """Return and clear the bytes to write to the socket."""
        self._pending_acks = 0
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_events(self) -> list[ev.Event]:
        """Events not returned yet (from bytes given to a constructor); usually ``[]``."""
        out, self._events = self._events, []
        return out

    def max_send_size(self, stream_id: int) -> int:
        """Octets ``send_data`` accepts now: min of the stream and connection send windows
        (§6.9.1), never negative; 0 for a stream that cannot send."""
        s = self._streams.get(stream_id)
        if s is None or s.state not in CAN_SEND:
            return 0
        w = s.send_window if s.send_window < self._send_window else self._send_window
        return w if w > 0 else 0

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue DATA frames (§6.1) split at the peer's SETTINGS_MAX_FRAME_SIZE.

        Raises:
            LocalProtocolError: ``len(data)`` exceeds ``max_send_size``, or the stream cannot
                send. A stream reset meanwhile (by either side) silently drops the data.
        """
        s = self._sendable(stream_id)
        if s is None:
            return
        n = len(data)
        self._check_window(s, n)
        s.send_window -= n
        self._send_window -= n
        self._out += data_frames(stream_id, data, end_stream, self._peer_max_frame)
        if end_stream:
            self._transition(s, _I.SEND_END_STREAM)

    def send_end(self, stream_id: int, trailers: ev.Headers = ()) -> None:
        """End our side of the stream: an empty DATA with END_STREAM, or HEADERS with the
        trailers and END_STREAM (§8.1).

        Raises:
            LocalProtocolError: the stream cannot send, or a trailer field is invalid.
        """
        s = self._sendable(stream_id)
        if s is None:
            return
        if trailers:
            self._send_block(s, self._encode_block(encode_fields([], trailers)), True)
        else:
            self._out += data_frames(stream_id, b"", True, self._peer_max_frame)
            self._transition(s, _I.SEND_END_STREAM)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Abort a stream with RST_STREAM (§6.4); nothing happens if it is not open."""
        s = self._streams.get(stream_id)
        if s is None or self._terminated:
            return
        self._out += rst_stream_frame(stream_id, error_code)
        self._close_stream(s, CloseReason.SENT_RESET)

    def ping(self, opaque: bytes = b"\x00" * 8) -> None:
        """Send a PING (§6.7) with 8 opaque octets."""
        if len(opaque) != 8:
            raise LocalProtocolError("PING carries exactly 8 octets")
        self._out += ping_frame(opaque)

    def close_connection(self, error_code: int = ErrorCode.NO_ERROR, reason: str = "") -> None:
        """End the connection now: GOAWAY with ``error_code`` (§6.8); ``closed`` becomes true."""
        if not self._terminated:
            self._out += goaway_frame(self._last_peer_stream, error_code, reason.encode("ascii", "replace"))
            self._terminated = True

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ev.Event]:
        """Feed bytes from the peer (``b""`` = EOF); return the events they complete.

        Never raises for peer input: stream errors are answered with RST_STREAM and reported as
        ``StreamReset(remote=False)``; connection errors with GOAWAY and ``ConnectionTerminated``.
        """
        events: list[ev.Event] = []
        if self._events:
            events, self._events = self._events, []
        if self._terminated:
            return events
        if not data:
            self._terminated = True
            events.append(ev.ConnectionTerminated(error_code=ErrorCode.NO_ERROR, remote=True,
                                                  last_stream_id=None, reason="EOF"))
            return events
        buf = self._buf + data if self._buf else data
        try:
            buf = self._before_frames(buf)
            n = len(buf)
            pos = 0
            max_frame = self.config.max_frame_size
            handlers = self._handlers
            unpack = _unpack_header
            while n - pos >= 9:
                head, flags, sid = unpack(buf, pos)
                length = head >> 8
                if length > max_frame:
                    raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
                end = pos + 9 + length
                if end > n:
                    break
                type_ = head & 0xFF
                sid &= 0x7FFFFFFF
                payload = buf[pos + 9:end]
                pos = end
                if self._need_settings:
                    if type_ != SETTINGS or flags & ACK:
                        raise H2ConnectionError(_PROTO, "the preface must be followed by SETTINGS (§3.4)")
                    self._need_settings = False
                if self._hb_sid and type_ != CONTINUATION:
                    raise H2ConnectionError(_PROTO, "frame interleaved in a header block (§6.10)")
                if type_ < 10:
                    try:
                        handlers[type_](flags, sid, payload, events)
                    except H2StreamError as e:
                        self._stream_error(e, events)
                    if self._terminated:
                        break
            self._buf = buf[pos:]
        except H2ConnectionError as e:
            self._connection_error(e.error_code, e.reason, events)
        return events

    def _before_frames(self, buf: bytes) -> bytes:
        return buf

    def _connection_error(self, code: ErrorCode, reason: str, events: list) -> None:
        self._buf = b""
        if self._terminated:
            return
        self._out += goaway_frame(self._last_peer_stream, code, reason.encode("ascii", "replace"))
        self._terminated = True
        events.append(ev.ConnectionTerminated(error_code=code, last_stream_id=self._last_peer_stream,
                                              remote=False, reason=reason))

    def _stream_error(self, e: H2StreamError, events: list) -> None:
        sid = e.stream_id
        if sid not in self._streams and self._is_idle(sid):
            # RST_STREAM MUST NOT be sent for an idle stream (§6.4), and a stream we reset is
            # closed (§5.1), so it could never open: the error is the connection's (as nghttp2
            # and h2 answer it)
            raise H2ConnectionError(e.error_code, f"{e.reason} (on idle stream {sid})")
        if sid not in self._streams and self._closed_streams.get(sid) is CloseReason.SENT_RESET:
            return  # we reset it already: nothing more is sent on it (§5.1 closed), late frames are ignored
        self._out += rst_stream_frame(sid, e.error_code)
        s = self._streams.get(sid)
        if s is not None:
            self._close_stream(s, CloseReason.SENT_RESET)
        else:
            self._remember_closed(sid, CloseReason.SENT_RESET)
        events.append(ev.StreamReset(stream_id=sid, error_code=e.error_code, remote=False))
        self._reset_for_peer(sid)

    def _reset_for_peer(self, sid: int) -> None:
        """Hook: we reset stream ``sid`` because of something the peer sent (MadeYouReset
        accounting, CVE-2025-8671)."""

    # -- stream bookkeeping -------------------------------------------------------------------

    def _is_idle(self, sid: int) -> bool:
        if sid & 1 == self._peer_parity:
            return sid > self._last_peer_stream
        return sid >= self._next_local_stream

    def _transition(self, s: H2Stream, inp: StreamInput) -> None:
        new = TRANSITIONS.get((s.state, inp))
        if new is None:
            if inp.value < 10:
                raise LocalProtocolError(f"cannot {inp.name} on stream {s.stream_id} in state {s.state.name}")
            conn, code = RECV_ERRORS.get((s.state, inp), (False, ErrorCode.STREAM_CLOSED))
            if conn:
                raise H2ConnectionError(code, f"{inp.name} on a stream in state {s.state.name}")
            raise H2StreamError(s.stream_id, code, f"{inp.name} in state {s.state.name}")
        s.state = new
        if new is _S.CLOSED:
            self._close_stream(s, CloseReason.END_STREAM)

    def _close_stream(self, s: H2Stream, reason: CloseReason) -> None:
        s.state = _S.CLOSED
        if self._streams.pop(s.stream_id, None) is not None:
            self._remember_closed(s.stream_id, reason)
            self._stream_closed(s)

    def _remember_closed(self, sid: int, reason: CloseReason) -> None:
        closed = self._closed_streams
        closed[sid] = reason
        if len(closed) > self.config.max_closed_streams:
            closed.popitem(last=False)

    def _stream_closed(self, s: H2Stream) -> None:
        """Hook: a stream left the table."""

    def _late_frame(self, sid: int, inp: StreamInput) -> None:
        """A frame for a stream that is not in the table: idle or closed (§5.1). Returns when the
        frame is to be ignored, raises the error to answer otherwise."""
        if self._is_idle(sid):
            raise H2ConnectionError(_PROTO, f"{inp.name} on idle stream {sid}")
        reason = self._closed_streams.get(sid)
        if reason is CloseReason.SENT_RESET or inp is _I.RECV_PRIORITY:
            return
        if reason is CloseReason.END_STREAM:
            if inp in (_I.RECV_WINDOW_UPDATE, _I.RECV_RST_STREAM):
                return
            raise H2ConnectionError(ErrorCode.STREAM_CLOSED, f"{inp.name} on closed stream {sid}")
        if inp is _I.RECV_RST_STREAM or inp is _I.RECV_WINDOW_UPDATE:
            return
        raise H2StreamError(sid, ErrorCode.STREAM_CLOSED, f"{inp.name} on closed stream {sid}")

    def _sendable(self, stream_id: int) -> H2Stream | None:
        s = self._streams.get(stream_id)
        if s is not None and s.state in CAN_SEND:
            return s
        if self._terminated:
            return None
        reason = self._closed_streams.get(stream_id)
        if s is None and reason in (CloseReason.SENT_RESET, CloseReason.RECV_RESET):
            return None
        raise LocalProtocolError(f"stream {stream_id} cannot send ({s.state.name if s else 'not open'})")

    def _encode_block(self, fields: list) -> bytes:
        """HPACK-encode one of our header blocks (RFC 7541), through a cache.

        A block of one-octet indexed fields only (every octet >= 0x80) did not change the
        encoder's dynamic table, so the same fields encode to the same octets until the table
        changes; any other block may have changed it and empties the cache.
        """
        key = tuple(fields)
        block = self._encoded.data.get(key)
        if block is None:
            block = self._encoder.encode(fields, huffman=self._huffman)
            if block.translate(None, _HIGH_OCTETS):
                self._encoded.clear()
            else:
                self._encoded.remember(key, block)
        return block

    def _encode_keyed(self, key: tuple, make_fields: Callable[..., list], *args: Any) -> bytes:
        """An HPACK block through the same cache, under the caller's ``key`` (the fields as the
        caller was given them, before checks): a key seen before skips ``make_fields(*args)``
        (the field checks, which it passed then) and the encoder. Unhashable keys are encoded
        every time; a block is kept under ``key`` only while it leaves the table unchanged."""
        try:
            block = self._encoded.data.get(key)
        except TypeError:  # unhashable header pairs: no cache
            return self._encode_block(make_fields(*args))
        if block is None:
            block = self._encode_block(make_fields(*args))
            if not block.translate(None, _HIGH_OCTETS):
                self._encoded.remember(key, block)
        return block

    def _check_window(self, s: H2Stream, n: int) -> None:
        """Raise WindowExceeded (a LocalProtocolError) when ``n`` octets exceed the stream's or the
        connection's send window (§6.9.1)."""
        if n > s.send_window or n > self._send_window:
            raise WindowExceeded(f"{n} octets exceed the flow-control window of stream {s.stream_id}")

    def _send_block(self, s: H2Stream, block: bytes, end_stream: bool) -> None:
        """Queue HEADERS (+ CONTINUATION) carrying the encoded ``block`` on stream ``s``."""
        self._out += header_block_frames(s.stream_id, block, end_stream, self._peer_max_frame)
        self._transition(s, _I.SEND_HEADERS)
        if end_stream:
            self._transition(s, _I.SEND_END_STREAM)

    def _restore_connection_window(self) -> None:
        inc = window_update_due(self._recv_window, self.config.connection_window_size)
        if inc:
            self._recv_window += inc
            self._out += window_update_frame(0, inc)

    # -- frame handlers (§6) ------------------------------------------------------------------

    def _on_data(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if sid == 0:
            raise H2ConnectionError(_PROTO, "DATA on stream 0")
        flow = len(payload)
        if flags & PADDED:
            start, end = strip_padding(payload, flags)
            data = payload[start:end]
        else:
            data = payload
        if flow > self._recv_window:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds the connection window")
        self._recv_window -= flow
        if self._recv_window <= self.config.connection_window_size >> 1:
            self._restore_connection_window()
        s = self._streams.get(sid)
        if s is None:
            return self._late_frame(sid, _I.RECV_DATA)
        if s.state not in CAN_RECV or (self._client and not s.head_received):
            if s.state in CAN_RECV:
                raise H2StreamError(sid, _PROTO, "DATA before the response head")
            self._transition(s, _I.RECV_DATA)
        if flow > s.recv_window:
            raise H2StreamError(sid, ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds the stream window")
        s.recv_window -= flow
        end_stream = flags & END_STREAM
        if data:
            self._empty_data = 0
            s.received += len(data)
            if s.content_length is not None and s.received > s.content_length:
                raise H2StreamError(sid, _PROTO, "more DATA than content-length")
            events.append(ev.DataReceived(stream_id=sid, data=data, flow_controlled_length=flow))
        elif not end_stream:
            self._empty_data += 1
            if self._empty_data > self.config.max_empty_data_frames:
                raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many empty DATA frames")
        if end_stream:
            self._recv_end(s, (), events)
        elif s.recv_window <= self.config.initial_window_size >> 1:
            inc = window_update_due(s.recv_window, self.config.initial_window_size)
            if inc:
                s.recv_window += inc
                self._out += window_update_frame(sid, inc)

    def _recv_end(self, s: H2Stream, trailers: ev.Headers, events: list) -> None:
        cl = s.content_length
        if cl is not None and cl != s.received:
            raise H2StreamError(s.stream_id, _PROTO, "DATA length does not match content-length")
        self._transition(s, _I.RECV_END_STREAM)
        events.append(ev.message_complete(s.stream_id, trailers))

    def _on_headers(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if sid == 0:
            raise H2ConnectionError(_PROTO, "HEADERS on stream 0")
        if flags & BARE_BLOCK_MASK == END_HEADERS:  # no padding, no priority: the payload is the block
            fields = self._decoded.data.get(payload)  # _end_block's cache, looked up inline (every request)
            if fields is not None:
                self._on_header_block(sid, fields, bool(flags & END_STREAM), False, events, payload)
            else:
                self._end_block(sid, payload, flags & END_STREAM, False, events)
            return
        if flags & PRIORITY:
            start, end = strip_padding(payload, flags, 5)
            self_dep = int.from_bytes(payload[start - 5:start - 1], "big") & 0x7FFFFFFF == sid
        else:
            start, end = strip_padding(payload, flags) if flags & PADDED else (0, len(payload))
            self_dep = False
        fragment = payload[start:end]
        if flags & END_HEADERS:
            self._end_block(sid, fragment, flags & END_STREAM, self_dep, events)
            return
        if len(fragment) > self.config.max_header_block_size:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        self._hb_sid = sid
        self._hb_parts = [fragment]
        self._hb_size = len(fragment)
        self._hb_count = 0
        self._hb_end_stream = bool(flags & END_STREAM)
        self._hb_self_dep = self_dep

    def _on_continuation(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        if not self._hb_sid or sid != self._hb_sid:
            raise H2ConnectionError(_PROTO, "CONTINUATION without a header block on that stream")
        self._hb_count += 1
        self._hb_size += len(payload)
        if self._hb_count > self.config.max_continuation_frames or self._hb_size > self.config.max_header_block_size:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        self._hb_parts.append(payload)
        if flags & END_HEADERS:
            self._hb_sid = 0
            block = b"".join(self._hb_parts)
            self._hb_parts = []
            self._end_block(sid, block, self._hb_end_stream, self._hb_self_dep, events)

    def _end_block(self, sid: int, block: bytes, end_stream: int, self_dep: bool, events: list) -> None:
        # HPACK decoding (RFC 7541) is a pure function of the block and the decoder's dynamic
        # table. A block that leaves the table as it was (indexed fields, literals without
        # indexing or never indexed -- e.g. h2load sends :path as a literal without indexing)
        # decodes to the same fields every time until the table changes, so it is cached under
        # its octets; a block that changed the table (an insertion puts a new entry object at the
        # front, a size update changes the maximum) empties the caches and is not cached itself.
        fields = self._decoded.data.get(block)
        if fields is not None:
            self._on_header_block(sid, fields, bool(end_stream), self_dep, events, block)
            return
        table = self._decoder.header_table
        entries = table.dynamic_entries
        count, first, size = len(entries), entries[0] if entries else None, table.maxsize
        try:
            fields = self._decoder.decode(block, raw=True)
        except hpack.OversizedHeaderListError:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header list too large") from None
        except (hpack.HPACKError, ValueError, IndexError):
            raise H2ConnectionError(ErrorCode.COMPRESSION_ERROR, "HPACK decoding failed") from None
        if len(entries) != count or (entries[0] if entries else None) is not first or table.maxsize != size:
            key = None
            self._decoded.clear()
            self._validated.clear()
        else:
            key = block
            self._decoded.remember(key, fields)
        self._on_header_block(sid, fields, bool(end_stream), self_dep, events, key)

    def _on_header_block(self, sid: int, fields: list, end_stream: bool, self_dep: bool, events: list,
                         key: bytes | None = None) -> None:
        """Role hook: a decoded header block. ``key`` is set when the block is cacheable (the same
        key always means the same fields), so validated results may be cached under it."""
        raise NotImplementedError

    def _on_trailers(self, s: H2Stream, fields: list, end_stream: bool, events: list) -> None:
        """A header block on a stream whose head arrived: trailers (§8.1)."""
        if s.state not in CAN_RECV:
            self._transition(s, _I.RECV_HEADERS)
        if not end_stream:
            raise H2StreamError(s.stream_id, _PROTO, "trailers without END_STREAM")
        self._recv_end(s, validate_trailers(s.stream_id, fields), events)

    @staticmethod
    def _stream_control(cls: type, name: str, sid: int, payload: bytes, length: int, stream_error: bool) -> Any:
        """Parse a PRIORITY or RST_STREAM frame (hyperframe ``cls``), which needs a stream
        (§6.3, §6.4: on stream 0 a connection PROTOCOL_ERROR) and exactly ``length`` octets
        (else FRAME_SIZE_ERROR: a stream error for PRIORITY, a connection error for RST_STREAM)."""
        if sid == 0:
            raise H2ConnectionError(_PROTO, f"{name} on stream 0")
        try:
            return parse_control(cls, sid, payload)
        except FrameSizeError:
            reason = f"{name} length is not {length}"
            if stream_error:
                raise H2StreamError(sid, ErrorCode.FRAME_SIZE_ERROR, reason) from None
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, reason) from None

    def _on_priority(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        frame = self._stream_control(PriorityFrame, "PRIORITY", sid, payload, 5, stream_error=True)
        if frame.depends_on == sid:  # §5.3.1 says stream error; nghttp2 and h2 close the connection,
            # and a stream error on a PRIORITY for an idle stream could not be sent (§6.4)
            raise H2ConnectionError(_PROTO, f"PRIORITY: stream {sid} depends on itself (§5.3.1)")

    def _on_rst_stream(self, flags: int, sid: int, payload: bytes, events: list) -> None:
        frame = self._stream_control(RstStreamFrame, "RST_STREAM", sid, payload, 4, stream_error=False)
        s = self._streams.get(sid)
        if s is None:
            return self._late_frame(sid, _I.RECV_RST_STREAM)
        self._close_stream(s, CloseReason.RECV_RESET)
        events.append(ev.StreamReset(stream_id=sid, error_code=frame.error_code, remote=True))
        self._peer_reset(s)

    def _peer_reset(self, s: H2Stream) -> None:
        """Hook: the peer reset an open stream (rapid-reset accounting)."""

    # -- helpers for subclasses ---------------------------------------------------------------

    def _new_stream(self, sid: int, state: StreamState) -> H2Stream:
        s = H2Stream(sid, state, self._peer_initial_window, self.config.initial_window_size)
        self._streams[sid] = s
        return s
