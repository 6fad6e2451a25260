"""The HTTP/2 stream state machine, RFC 9113 §5.1, as a table; and the per-stream record.

::

                             +--------+
                     send PP |        | recv PP
                    ,--------+  idle  +--------.
                   /         |        |         \\
                  v          +--------+          v
           +----------+          |           +----------+
           |          |          | send H /  |          |
    ,------+ reserved |          | recv H    | reserved +------.
    |      | (local)  |          |           | (remote) |      |
    |      +---+------+          v           +------+---+      |
    |          |             +--------+             |          |
    |          |     recv ES |        | send ES     |          |
    |   send H |     ,-------+  open  +-------.     | recv H   |
    |          |    /        |        |        \\    |          |
    |          v   v         +---+----+         v   v          |
    |      +----------+          |           +----------+      |
    |      |   half-  |          |           |   half-  |      |
    |      |  closed  |          | send R /  |  closed  |      |
    |      | (remote) |          | recv R    | (local)  |      |
    |      +----+-----+          |           +-----+----+      |
    |           |                |                 |           |
    |           | send ES /      |       recv ES / |           |
    |           |  send R /      v        send R / |           |
    |           |  recv R    +--------+   recv R   |           |
    | send R /  `----------->|        |<-----------'  send R / |
    | recv R                 | closed |               recv R   |
    `----------------------->|        |<-----------------------'
                             +--------+

A HEADERS or DATA frame with END_STREAM is two inputs: the frame, then ``*_END_STREAM``.
``TRANSITIONS[(state, input)]`` is the next state; a missing entry is an error, and
``RECV_ERRORS`` says which one the peer gets for the inputs it can cause (sending side misuse is a
``LocalProtocolError`` raised by the connection).
"""

from __future__ import annotations

import enum

from .errors import ErrorCode

__all__ = ["StreamState", "StreamInput", "CloseReason", "TRANSITIONS", "RECV_ERRORS", "H2Stream", "CAN_SEND",
           "CAN_RECV", "SEND_WHOLE"]


class StreamState(enum.Enum):
    """Stream states, RFC 9113 §5.1."""

    __hash__ = object.__hash__  # members are singletons; Enum's own __hash__ is Python code

    IDLE = 0
    RESERVED_LOCAL = 1
    RESERVED_REMOTE = 2
    OPEN = 3
    HALF_CLOSED_LOCAL = 4
    HALF_CLOSED_REMOTE = 5
    CLOSED = 6


class StreamInput(enum.Enum):
    """What happens to a stream: frames sent or received."""

    __hash__ = object.__hash__  # members are singletons; Enum's own __hash__ is Python code

    SEND_HEADERS = 0
    SEND_DATA = 1
    SEND_END_STREAM = 2
    SEND_RST_STREAM = 3
    SEND_PUSH_PROMISE = 4
    RECV_HEADERS = 10
    RECV_DATA = 11
    RECV_END_STREAM = 12
    RECV_RST_STREAM = 13
    RECV_PUSH_PROMISE = 14
    RECV_WINDOW_UPDATE = 15
    RECV_PRIORITY = 16


class CloseReason(enum.Enum):
    """How a stream got closed; it decides how late frames on it are answered (§5.1 "closed")."""

    END_STREAM = 0    # both sides sent END_STREAM: more frames are a connection error STREAM_CLOSED
    RECV_RESET = 1    # the peer sent RST_STREAM: more frames are a stream error STREAM_CLOSED
    SENT_RESET = 2    # we sent RST_STREAM: frames already in flight are ignored


S = StreamState
I = StreamInput  # noqa: E741

TRANSITIONS: dict[tuple[StreamState, StreamInput], StreamState] = {
    (S.IDLE, I.SEND_HEADERS): S.OPEN,
    (S.IDLE, I.RECV_HEADERS): S.OPEN,
    (S.IDLE, I.SEND_PUSH_PROMISE): S.RESERVED_LOCAL,
    (S.IDLE, I.RECV_PUSH_PROMISE): S.RESERVED_REMOTE,
    (S.IDLE, I.RECV_PRIORITY): S.IDLE,

    (S.RESERVED_LOCAL, I.SEND_HEADERS): S.HALF_CLOSED_REMOTE,
    (S.RESERVED_LOCAL, I.SEND_RST_STREAM): S.CLOSED,
    (S.RESERVED_LOCAL, I.RECV_RST_STREAM): S.CLOSED,
    (S.RESERVED_LOCAL, I.RECV_WINDOW_UPDATE): S.RESERVED_LOCAL,
    (S.RESERVED_LOCAL, I.RECV_PRIORITY): S.RESERVED_LOCAL,

    (S.RESERVED_REMOTE, I.RECV_HEADERS): S.HALF_CLOSED_LOCAL,
    (S.RESERVED_REMOTE, I.SEND_RST_STREAM): S.CLOSED,
    (S.RESERVED_REMOTE, I.RECV_RST_STREAM): S.CLOSED,
    (S.RESERVED_REMOTE, I.RECV_PRIORITY): S.RESERVED_REMOTE,

    (S.OPEN, I.SEND_HEADERS): S.OPEN,
    (S.OPEN, I.SEND_DATA): S.OPEN,
    (S.OPEN, I.SEND_END_STREAM): S.HALF_CLOSED_LOCAL,
    (S.OPEN, I.SEND_RST_STREAM): S.CLOSED,
    (S.OPEN, I.RECV_HEADERS): S.OPEN,
    (S.OPEN, I.RECV_DATA): S.OPEN,
    (S.OPEN, I.RECV_END_STREAM): S.HALF_CLOSED_REMOTE,
    (S.OPEN, I.RECV_RST_STREAM): S.CLOSED,
    (S.OPEN, I.RECV_WINDOW_UPDATE): S.OPEN,
    (S.OPEN, I.RECV_PRIORITY): S.OPEN,

    (S.HALF_CLOSED_LOCAL, I.SEND_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_HEADERS): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_DATA): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_END_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_WINDOW_UPDATE): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_PRIORITY): S.HALF_CLOSED_LOCAL,

    (S.HALF_CLOSED_REMOTE, I.SEND_HEADERS): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.SEND_DATA): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.SEND_END_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.SEND_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.RECV_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.RECV_WINDOW_UPDATE): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.RECV_PRIORITY): S.HALF_CLOSED_REMOTE,

    # §5.1 "closed": PRIORITY any time; WINDOW_UPDATE and RST_STREAM may race with our close.
    (S.CLOSED, I.RECV_PRIORITY): S.CLOSED,
    (S.CLOSED, I.RECV_WINDOW_UPDATE): S.CLOSED,
    (S.CLOSED, I.RECV_RST_STREAM): S.CLOSED,
    (S.CLOSED, I.SEND_RST_STREAM): S.CLOSED,
}
"""``(state, input) -> next state`` of RFC 9113 §5.1."""

RECV_ERRORS: dict[tuple[StreamState, StreamInput], tuple[bool, ErrorCode]] = {
    # idle: anything but HEADERS/PRIORITY is a connection error PROTOCOL_ERROR (§5.1 "idle").
    (S.IDLE, I.RECV_DATA): (True, ErrorCode.PROTOCOL_ERROR),
    (S.IDLE, I.RECV_RST_STREAM): (True, ErrorCode.PROTOCOL_ERROR),
    (S.IDLE, I.RECV_WINDOW_UPDATE): (True, ErrorCode.PROTOCOL_ERROR),
    (S.IDLE, I.RECV_END_STREAM): (True, ErrorCode.PROTOCOL_ERROR),
    (S.IDLE, I.RECV_PUSH_PROMISE): (True, ErrorCode.PROTOCOL_ERROR),
    # half-closed (remote): more HEADERS/DATA is a stream error STREAM_CLOSED.
    (S.HALF_CLOSED_REMOTE, I.RECV_HEADERS): (False, ErrorCode.STREAM_CLOSED),
    (S.HALF_CLOSED_REMOTE, I.RECV_DATA): (False, ErrorCode.STREAM_CLOSED),
    (S.HALF_CLOSED_REMOTE, I.RECV_END_STREAM): (False, ErrorCode.STREAM_CLOSED),
    # reserved (local): the peer may not send HEADERS/DATA there (§5.1 "reserved (local)").
    (S.RESERVED_LOCAL, I.RECV_HEADERS): (True, ErrorCode.PROTOCOL_ERROR),
    (S.RESERVED_LOCAL, I.RECV_DATA): (True, ErrorCode.PROTOCOL_ERROR),
    (S.RESERVED_REMOTE, I.RECV_DATA): (True, ErrorCode.PROTOCOL_ERROR),
    (S.RESERVED_REMOTE, I.RECV_WINDOW_UPDATE): (True, ErrorCode.PROTOCOL_ERROR),
}
"""``(state, input) -> (is_connection_error, error_code)`` for received frames that
``TRANSITIONS`` does not allow; anything missing here is a stream error STREAM_CLOSED."""


class H2Stream:
    """One stream's state, windows and message accounting (a plain slotted record).

    Attributes:
        stream_id: the stream identifier (§5.1.1).
        state: its ``StreamState``.
        send_window: octets we may still send (may be negative, §6.9.2).
        recv_window: octets the peer may still send.
        content_length: the request/response ``content-length``, or ``None`` (§8.1.1).
        received: DATA octets received (payload without padding).
        head_received: a header block other than 1xx arrived (the next one is trailers).
        head_sent: our final response head went out.
        pending: (client) body octets waiting for the send window; ``pending_end``: send
            END_STREAM after them.
    """

    __slots__ = ("stream_id", "state", "send_window", "recv_window", "content_length", "received",
                 "head_received", "head_sent", "pending", "pending_end", "method")

    def __init__(self, stream_id: int, state: StreamState, send_window: int, recv_window: int) -> None:
        self.stream_id = stream_id
        self.state = state
        self.send_window = send_window
        self.recv_window = recv_window
        self.content_length: int | None = None
        self.received = 0
        self.head_received = False
        self.head_sent = False
        self.pending = b""
        self.pending_end = False
        self.method = ""

    def __repr__(self) -> str:
        return f"<H2Stream {self.stream_id} {self.state.name}>"


#: States in which a stream may send DATA / receive DATA (§5.1: open and the half-closed side
#: that is still open).
CAN_SEND = (StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE)
#: ``state -> state`` after a whole response goes out (HEADERS, then END_STREAM): the two rows
#: of ``TRANSITIONS`` composed, for the states that can send
SEND_WHOLE: dict[StreamState, StreamState] = {
    state: TRANSITIONS[(TRANSITIONS[(state, StreamInput.SEND_HEADERS)], StreamInput.SEND_END_STREAM)]
    for state in CAN_SEND}
CAN_RECV = (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL)
