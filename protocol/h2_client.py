"""HTTP/2 client role (RFC 9113), sans-IO: ``H2ClientConnection``, built for a load generator.

Theory of operation: construction queues the connection preface and our SETTINGS (push off,
§8.4); ``send_request`` allocates the next odd stream id and queues HEADERS (and the body, as far
as the flow-control windows allow: the rest is queued and sent as WINDOW_UPDATEs arrive);
``receive_data`` turns the server's frames into ``ResponseReceived`` /
``InformationalResponseReceived`` / ``DataReceived`` / ``MessageComplete`` events.

The hot path is kept short: header blocks are cached both ways while the HPACK dynamic tables
do not change (see ``H2Core._encode_block`` / ``_end_block``): a repeated request encodes, and a
repeated response decodes, as a handful of one-octet indexes without running the HPACK coder.
Literals are sent without Huffman coding (cheaper to produce). ``encode_header_block`` is a
stateless encoder (static table + literals without indexing, RFC 7541 §6.2.2) for tests and tools.
"""

from __future__ import annotations

from . import events as ev
from .errors import ErrorCode, H2ConnectionError, H2StreamError, LocalProtocolError
from .h2_core import H2Core
from .h2_frames import MAX_STREAM_ID, PREFACE, data_frames, header_block_frames
from .h2_headers import CONNECTION_SPECIFIC, encode_fields, validate_response
from .h2_settings import H2Config
from .h2_streams import CloseReason, H2Stream, StreamInput, StreamState

__all__ = ["H2ClientConnection", "CLIENT_CONFIG"]

CLIENT_CONFIG = H2Config(initial_window_size=1 << 20, connection_window_size=1 << 24)
"""Default client settings: large receive windows, so big responses need few WINDOW_UPDATEs."""

_DROP = CONNECTION_SPECIFIC | {"host", "te"}


def _request_fields(method: str, path: str, authority: str, scheme: str,
                    headers: ev.Headers) -> list[tuple[bytes, bytes]]:
    """A request head's checked field list, the pseudo-header fields first (§8.3.1); host, te and
    the connection-specific fields dropped (see ``encode_fields``)."""
    return encode_fields([(b":method", method.encode("latin-1")), (b":scheme", scheme.encode("latin-1")),
                          (b":authority", authority.encode("latin-1")), (b":path", path.encode("latin-1"))],
                         headers, _DROP)


class H2ClientConnection(H2Core):
    """Client role of one HTTP/2 connection.

    Args:
        config: what we advertise; ``CLIENT_CONFIG`` (1 MiB stream, 16 MiB connection receive
            windows) if None. ``max_concurrent_streams`` is not advertised by a client.

    Attributes:
        available_streams: how many more requests may be started now.
        closed: true once the connection is over.
    """

    _client = True
    _huffman = False  # cheaper to encode; repeated requests become one-octet indexes anyway

    def __init__(self, config: H2Config | None = None) -> None:
        super().__init__(config or CLIENT_CONFIG)
        self._out[0:0] = PREFACE
        self._peer_max_streams = 100  # until the server's SETTINGS arrive
        self._goaway_received = False
        self._pending: dict[int, H2Stream] = {}

    @property
    def available_streams(self) -> int:
        """The server's MAX_CONCURRENT_STREAMS minus our open streams (0 after GOAWAY)."""
        if self._terminated or self._goaway_received or self._next_local_stream > MAX_STREAM_ID:
            return 0
        n = self._peer_max_streams - len(self._streams)
        return n if n > 0 else 0

    def send_request(self, method: str, path: str, authority: str, scheme: str = "http",
                     headers: ev.Headers = (), body: bytes | None = None,
                     end_stream: bool | None = None) -> int:
        """Start a request on a new stream; return its id (1, 3, 5, ...).

        Args:
            method, path, authority, scheme: the pseudo-header fields (§8.3.1).
            headers: regular fields, lowercase; connection-specific ones, ``host`` and ``te`` are
                dropped.
            body: octets to send after the head; what the flow-control windows do not allow now
                is sent as they open.
            end_stream: end the request after ``body`` (default true); false to go on with
                ``send_data`` / ``send_end``.

        Raises:
            LocalProtocolError: the connection is closed or going away, stream ids are used up,
                or a field is invalid.
        """
        if self._terminated or self._goaway_received:
            raise LocalProtocolError("the connection is closed or going away")
        sid = self._next_local_stream
        if sid > MAX_STREAM_ID:
            raise LocalProtocolError("stream ids exhausted")
        if end_stream is None:
            end_stream = True
        key = (method, path, authority, scheme, headers if type(headers) is tuple else tuple(headers))
        block = self._encode_keyed(key, _request_fields, method, path, authority, scheme, headers)
        self._next_local_stream = sid + 2
        s = H2Stream(sid, StreamState.OPEN, self._peer_initial_window, self.config.initial_window_size)
        s.method = method
        self._streams[sid] = s
        head_ends = end_stream and not body
        self._out += header_block_frames(sid, block, head_ends, self._peer_max_frame)
        if head_ends:
            s.state = StreamState.HALF_CLOSED_LOCAL
        elif body:
            self._queue_body(s, body, end_stream)
        return sid

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send request body octets; what exceeds the windows is queued and sent as they open.

        Raises:
            LocalProtocolError: the stream cannot send.
        """
        s = self._sendable(stream_id)
        if s is not None:
            self._queue_body(s, data, end_stream)

    def send_end(self, stream_id: int, trailers: ev.Headers = ()) -> None:
        """End the request (after any queued body); trailers go in a HEADERS frame (§8.1)."""
        s = self._sendable(stream_id)
        if s is None:
            return
        if s.pending and not trailers:
            s.pending_end = True
            return
        if s.pending:
            raise LocalProtocolError("trailers while body octets wait for the window")
        super().send_end(stream_id, trailers)

    def _queue_body(self, s: H2Stream, data: bytes, end_stream: bool) -> None:
        if s.pending:
            s.pending += data
            s.pending_end = end_stream
            return
        n = self.max_send_size(s.stream_id)
        if len(data) <= n:
            s.send_window -= len(data)
            self._send_window -= len(data)
            self._out += data_frames(s.stream_id, data, end_stream, self._peer_max_frame)
            if end_stream:
                self._transition(s, StreamInput.SEND_END_STREAM)
            return
        if n:
            s.send_window -= n
            self._send_window -= n
            self._out += data_frames(s.stream_id, data[:n], False, self._peer_max_frame)
        s.pending = data[n:]
        s.pending_end = end_stream
        self._pending[s.stream_id] = s

    def _window_opened(self, sid: int, events: list) -> None:
        if self._pending:
            for s in (list(self._pending.values()) if sid == 0 else [self._pending.get(sid)]):
                if s is None:
                    continue
                if s.stream_id not in self._streams:
                    self._pending.pop(s.stream_id, None)
                    continue
                data, end = s.pending, s.pending_end
                s.pending = b""
                del self._pending[s.stream_id]
                self._queue_body(s, data, end)
        events.append(ev.FlowControlUpdated(stream_id=sid))

    # -- receiving ----------------------------------------------------------------------------

    def _on_header_block(self, sid: int, fields: list, end_stream: bool, self_dep: bool, events: list,
                         key: bytes | None = None) -> None:
        s = self._streams.get(sid)
        if s is None:
            if not sid & 1:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "server-initiated stream without push")
            self._late_frame(sid, StreamInput.RECV_HEADERS)
            return
        if s.head_received:
            self._on_trailers(s, fields, end_stream, events)
            return
        if s.state is not StreamState.OPEN and s.state is not StreamState.HALF_CLOSED_LOCAL:
            self._transition(s, StreamInput.RECV_HEADERS)
        valid = self._validated.data.get(key) if key is not None else None
        if valid is None:
            valid = validate_response(sid, fields)
            if key is not None:
                self._validated.remember(key, valid)
        status, headers, cl = valid  # type: ignore[misc]
        if status < 200:
            if end_stream or status == 101:
                raise H2StreamError(sid, ErrorCode.PROTOCOL_ERROR, "invalid informational response")
            events.append(ev.InformationalResponseReceived(stream_id=sid, status=status, headers=headers))
            return
        s.head_received = True
        if s.method != "HEAD" and status != 204 and status != 304:
            s.content_length = cl
        events.append(ev.ResponseReceived(stream_id=sid, status=status, headers=headers,
                                          http_version="2", end_stream=end_stream))
        if end_stream:
            self._recv_end(s, (), events)

    def _on_goaway(self, last_stream_id: int, error_code: int, debug: str, events: list) -> None:
        self._goaway_received = True
        events.append(ev.ConnectionTerminated(error_code=error_code, last_stream_id=last_stream_id,
                                              remote=True, reason=debug or "GOAWAY received"))
        for s in [s for sid, s in self._streams.items() if sid > last_stream_id]:
            self._close_stream(s, CloseReason.RECV_RESET)
            events.append(ev.StreamReset(stream_id=s.stream_id, error_code=ErrorCode.REFUSED_STREAM, remote=True))
        if error_code != ErrorCode.NO_ERROR or not self._streams:
            self._terminated = True

    def _stream_closed(self, s: H2Stream) -> None:
        if self._pending:
            self._pending.pop(s.stream_id, None)
        if self._goaway_received and not self._streams:
            self._terminated = True
