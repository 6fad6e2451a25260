"""Events a sans-IO connection returns from ``receive_data``.

Both HTTP/1.x (RFC 9112) and HTTP/2 (RFC 9113) connections speak in these events, so the glue in
``engines/session.py`` never cares which protocol it hosts. Every request or response is identified
by a ``stream_id``: the real stream identifier for HTTP/2 (RFC 9113 §5.1.1), and a per-connection
sequence number 1, 3, 5, ... for HTTP/1.x (one "stream" per request/response exchange).

Header fields are ``tuple[tuple[str, str], ...]``: names lowercased, values decoded as ISO-8859-1
(RFC 9110 §5.5), in the order received. Pseudo-header fields of HTTP/2 are not in ``headers``; their
values are in the dedicated attributes.

Events are frozen, keyword-only dataclasses with ``__slots__`` (house style, after h11 and h2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Headers",
    "Event",
    "RequestReceived",
    "ResponseReceived",
    "InformationalResponseReceived",
    "DataReceived",
    "MessageComplete",
    "StreamReset",
    "FlowControlUpdated",
    "ConnectionTerminated",
    "ProtocolSwitched",
    "request_received",
    "message_complete",
]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base class of every protocol event."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestReceived(Event):
    """A request head arrived (server role).

    Attributes:
        stream_id: the HTTP/2 stream id, or the HTTP/1.x exchange number.
        method: the method token, e.g. ``"GET"`` (case-sensitive, RFC 9110 §9.1).
        target: the request target as sent: origin-form ``/path?query`` (HTTP/2 ``:path``),
            ``*`` for ``OPTIONS *``, or absolute-form for proxies.
        authority: the Host header or ``:authority`` pseudo-header; ``""`` when absent (HTTP/1.0).
        scheme: ``"http"`` / ``"https"`` (``:scheme`` for HTTP/2; ``"http"`` for HTTP/1.x unless the
            engine says it is TLS).
        http_version: ``"1.0"``, ``"1.1"`` or ``"2"``.
        headers: the regular header fields, names lowercased.
        expect_continue: the client sent ``Expect: 100-continue`` and waits for a 100 before sending
            the body (HTTP/1.1 only; RFC 9110 §10.1.1).
        end_stream: no body follows (HTTP/1: no Content-Length/chunked; HTTP/2: END_STREAM set on
            the HEADERS). When true no ``DataReceived`` follows, but ``MessageComplete`` still does.
    """

    stream_id: int
    method: str
    target: str
    authority: str
    scheme: str
    http_version: str
    headers: Headers
    expect_continue: bool = False
    end_stream: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ResponseReceived(Event):
    """A final response head arrived (client role). ``status`` is 200..599."""

    stream_id: int
    status: int
    headers: Headers
    http_version: str
    end_stream: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class InformationalResponseReceived(Event):
    """A 1xx response other than 101 arrived (client role), e.g. 100 Continue."""

    stream_id: int
    status: int
    headers: Headers


@dataclass(frozen=True, kw_only=True, slots=True)
class DataReceived(Event):
    """Part of a message body arrived on a stream.

    ``flow_controlled_length`` is the number of bytes that counted against the flow-control window
    (HTTP/2: data plus padding, RFC 9113 §6.9.1); 0 for HTTP/1.x. The connection itself sends
    WINDOW_UPDATE once the data is delivered, so the application need not acknowledge it.
    """

    stream_id: int
    data: bytes
    flow_controlled_length: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageComplete(Event):
    """The message on ``stream_id`` is complete; ``trailers`` holds the trailer fields, if any."""

    stream_id: int
    trailers: Headers = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamReset(Event):
    """A stream ended abnormally.

    ``remote`` is true when the peer sent RST_STREAM, false when this side reset it (for a stream
    error detected while parsing, RFC 9113 §5.4.2). ``error_code`` is the HTTP/2 error code
    (RFC 9113 §7) as an int. Any handler working on the stream should be cancelled.
    """

    stream_id: int
    error_code: int
    remote: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowControlUpdated(Event):
    """More may be sent: a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE grew a send window.

    ``stream_id`` 0 means the connection window (every stream may be able to send again).
    """

    stream_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionTerminated(Event):
    """The connection is over, or will be once ``data_to_send()`` is flushed.

    Attributes:
        error_code: HTTP/2 error code (0 NO_ERROR for a graceful end); for HTTP/1.x 0, or 1
            (PROTOCOL_ERROR) when a malformed request ended it.
        status: for HTTP/1.x, the error status that was sent (400, 408, 413, 414, 431, 501, 505);
            ``None`` otherwise.
        last_stream_id: for a GOAWAY, the highest stream id the sender may have processed;
            streams above it were not processed and may be retried.
        remote: true when the peer ended it (GOAWAY received, or EOF).
        reason: a short human-readable explanation for logs.
    """

    error_code: int = 0
    status: int | None = None
    last_stream_id: int | None = None
    remote: bool = False
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProtocolSwitched(Event):
    """HTTP/1.1 accepted ``Upgrade: h2c`` (RFC 7540 §3.2) and answered 101 Switching Protocols.

    The engine's glue must replace the HTTP/1.1 connection by an HTTP/2 server connection made with
    ``H2Connection.from_upgrade(settings_header, request, config)`` (``request`` is the upgraded
    request, to be answered as stream 1, half-closed (remote)), hand ``request`` with its whole
    ``body`` to the application as stream 1, and then feed ``leftover`` -- the bytes that followed
    the request, normally the start of the client preface -- to the new connection's
    ``receive_data`` (``engines/session.py`` does all three).
    """

    protocol: str
    settings_header: str
    request: RequestReceived
    body: bytes
    leftover: bytes


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple:
    """The slot descriptors' ``__set__`` of the frozen, slotted event ``cls``, in ``names`` order
    (which must list every field)."""
    assert set(names) == set(cls.__dataclass_fields__), cls
    return tuple(getattr(cls, name).__set__ for name in names)


# Hot-path constructors for the two events every request produces, used by both protocols: they
# fill the slots directly, which is what the frozen dataclass __init__ does through
# object.__setattr__, at a third of the cost. The result is an ordinary instance (tests compare it
# with one built the normal way).
_rr = _slot_setters(RequestReceived, ("stream_id", "method", "target", "authority", "scheme",
                                      "http_version", "headers", "expect_continue", "end_stream"))
_mc = _slot_setters(MessageComplete, ("stream_id", "trailers"))


def request_received(stream_id, method, target, authority, scheme, http_version, headers,
                     expect_continue, end_stream, _new=object.__new__, _cls=RequestReceived,
                     _s0=_rr[0], _s1=_rr[1], _s2=_rr[2], _s3=_rr[3], _s4=_rr[4], _s5=_rr[5], _s6=_rr[6],
                     _s7=_rr[7], _s8=_rr[8]) -> RequestReceived:
    """``RequestReceived(stream_id=..., ...)``, positionally, at a third of the cost."""
    obj = _new(_cls)
    _s0(obj, stream_id)
    _s1(obj, method)
    _s2(obj, target)
    _s3(obj, authority)
    _s4(obj, scheme)
    _s5(obj, http_version)
    _s6(obj, headers)
    _s7(obj, expect_continue)
    _s8(obj, end_stream)
    return obj


def message_complete(stream_id, trailers, _new=object.__new__, _cls=MessageComplete,
                     _s0=_mc[0], _s1=_mc[1]) -> MessageComplete:
    """``MessageComplete(stream_id=..., trailers=...)``, positionally, at a third of the cost."""
    obj = _new(_cls)
    _s0(obj, stream_id)
    _s1(obj, trailers)
    return obj
