"""The shape every sans-IO connection of this package has, HTTP/1.x and HTTP/2 alike.

Theory of operation: an engine owns the socket; the connection owns the protocol state. The engine
calls ``receive_data(bytes)`` with what it read (``b""`` for EOF) and gets events back; the glue
answers requests with ``send_headers`` / ``send_data`` / ``send_end`` (or ``send_response`` for a
whole response at once); the engine writes ``data_to_send()`` to the socket. Nothing here reads a
clock, a file or a socket: the time an engine needs to stamp a ``Date`` header is given to it in
the header list.

Stream ids: HTTP/2 uses the real stream id. HTTP/1.x numbers its request/response exchanges
1, 3, 5, ... so that the same glue code works for both; an HTTP/1.x connection delivers the events of
exchange N+2 only after the response of exchange N has been completed with ``send_end`` (pipelined
requests stay buffered until then, and come out of ``next_events()``).
"""

from __future__ import annotations

from typing import Protocol

from .events import Event, Headers

__all__ = ["ServerConnection"]


class ServerConnection(Protocol):
    """Server role of one connection (HTTP/1.x or HTTP/2).

    Attributes:
        http_version: ``"1.1"`` (also for 1.0 peers) or ``"2"``.
        multiplexed: ``True`` when streams are concurrent (HTTP/2), ``False`` when exchanges are
            one after another (HTTP/1.x): what an engine needs to know, never the version.
        closed: true when the engine should close the socket once ``data_to_send()`` is flushed
            (an error ended it, ``Connection: close`` was honoured, GOAWAY finished, EOF seen).
    """

    http_version: str
    multiplexed: bool

    @property
    def closed(self) -> bool: ...

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the peer (``b""`` = EOF); return the events they complete.

        Never raises for bad input from the peer: errors are answered inside (an HTTP status or
        RST_STREAM/GOAWAY in ``data_to_send()``) and reported as ``StreamReset`` /
        ``ConnectionTerminated`` events.
        """

    def next_events(self) -> list[Event]:
        """Events from bytes already buffered (HTTP/1.x pipelining after a response ends)."""

    def send_informational(self, stream_id: int, status: int, headers: Headers = ()) -> None:
        """Send a 1xx response (100 Continue, 103 Early Hints)."""

    def send_headers(self, stream_id: int, status: int, headers: Headers, *, end_stream: bool = False) -> None:
        """Send the response head. ``headers`` are lowercase (name, value) pairs; the connection
        adds framing (content-length/transfer-encoding/connection for HTTP/1.x) when missing.

        Raises:
            LocalProtocolError: the stream is not awaiting a response, or a header is invalid
                (CR, LF or NUL in a name or value).
        """

    def send_response(self, stream_id: int, status: int, headers: Headers, body: bytes) -> None:
        """Send a whole response: ``send_headers`` + ``send_data(body)`` + ``send_end`` in one call
        (HTTP/2: END_STREAM on the last DATA frame). ``len(body)`` must be <= ``max_send_size``.

        Raises:
            LocalProtocolError: as those three.
        """

    def max_send_size(self, stream_id: int) -> int:
        """Bytes of body ``send_data`` accepts now (HTTP/2: min of the stream and connection
        flow-control windows; HTTP/1.x: a large constant). 0 means wait for ``FlowControlUpdated``.
        """

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send part of the body; ``len(data)`` must be <= ``max_send_size(stream_id)``.

        Raises:
            LocalProtocolError: more than the window allows, or the stream cannot send.
        """

    def send_end(self, stream_id: int, trailers: Headers = ()) -> None:
        """End the response on ``stream_id`` (an empty DATA frame with END_STREAM, or HEADERS with
        trailers; the last chunk for HTTP/1.x chunked). Ends the exchange for HTTP/1.x."""

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abort a response (HTTP/2 RST_STREAM; HTTP/1.x: the connection must close)."""

    def start_shutdown(self) -> None:
        """Graceful stop: HTTP/1.x answers the in-flight request with ``Connection: close``;
        HTTP/2 sends GOAWAY(2^31-1) and a PING, then the final GOAWAY on the PING ACK (§6.8)."""

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return bytes (a cheap look, nothing taken)."""

    def data_to_send(self) -> bytes:
        """Return and clear the bytes to write to the socket."""
