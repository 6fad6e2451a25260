"""The two state machines of an HTTP/1.x exchange (RFC 9112), as tables (h11's READERS and WRITERS
drive the same states): the receive side (:class:`Recv`, every move in :data:`RECV_TRANSITIONS`)
and the send side (:class:`Send`, ``(state, operation) -> next state`` in :data:`SEND_TRANSITIONS`).
"""

from __future__ import annotations

import enum

__all__ = ["Recv", "Send", "Op", "SEND_TRANSITIONS", "RECV_TRANSITIONS", "RECV_NEXT", "BODY_STATES"]


class Recv(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own __hash__ is Python code
    HEAD = "awaiting a request head"
    LENGTH = "reading a Content-Length body"
    CHUNK_SIZE = "awaiting a chunk-size line"
    CHUNK_DATA = "reading chunk data"
    CHUNK_CRLF = "awaiting the CRLF after chunk data"
    TRAILERS = "awaiting the trailer section"
    UPGRADE = "buffering the body of an h2c upgrade request"
    DONE = "request complete, awaiting the end of its response"
    CLOSED = "closed or switched"


class Send(enum.Enum):
    __hash__ = object.__hash__
    IDLE = "no exchange in progress"
    WAIT = "request delivered, awaiting the response head"
    BODY = "response head sent"


class Op(enum.Enum):
    __hash__ = object.__hash__
    REQUEST = "a request head delivered"
    INFORMATIONAL = "send_informational"
    HEADERS = "send_headers"
    DATA = "send_data"
    END = "send_end"


#: The send side, h11's WRITERS in table form: (state, operation) -> next state. ``REQUEST`` is
#: the receive side delivering a request head; the others are the glue's calls. A missing entry
#: is the caller's bug (LocalProtocolError).
SEND_TRANSITIONS: dict[tuple[Send, Op], Send] = {
    (Send.IDLE, Op.REQUEST): Send.WAIT,
    (Send.WAIT, Op.INFORMATIONAL): Send.WAIT,
    (Send.WAIT, Op.HEADERS): Send.BODY,
    (Send.BODY, Op.DATA): Send.BODY,
    (Send.BODY, Op.END): Send.IDLE,
}

#: The receive side: every (state, next state) move the readers make (h11's READERS drive the
#: same states); any state may also go to CLOSED (an error, EOF, the end of the connection).
RECV_TRANSITIONS: frozenset[tuple[Recv, Recv]] = frozenset({
    (Recv.HEAD, Recv.LENGTH), (Recv.HEAD, Recv.CHUNK_SIZE), (Recv.HEAD, Recv.DONE),
    (Recv.HEAD, Recv.UPGRADE),
    (Recv.LENGTH, Recv.DONE),
    (Recv.CHUNK_SIZE, Recv.CHUNK_DATA), (Recv.CHUNK_SIZE, Recv.TRAILERS),
    (Recv.CHUNK_DATA, Recv.CHUNK_CRLF), (Recv.CHUNK_CRLF, Recv.CHUNK_SIZE),
    (Recv.TRAILERS, Recv.DONE),
    (Recv.DONE, Recv.HEAD),  # the response ended and the connection persists
}) | frozenset((state, Recv.CLOSED) for state in Recv)
RECV_NEXT: dict[Recv, frozenset[Recv]] = {
    state: frozenset(b for a, b in RECV_TRANSITIONS if a is state) for state in Recv}
#: the states in which a request body is being read (EOF there is "EOF mid-request")
BODY_STATES = frozenset({Recv.LENGTH, Recv.CHUNK_SIZE, Recv.CHUNK_DATA, Recv.CHUNK_CRLF, Recv.TRAILERS, Recv.UPGRADE})
