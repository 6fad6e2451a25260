"""HTTP/1.x server connection, sans-IO (RFC 9112, with RFC 9110 semantics and RFC 7540 §3.2 h2c).

Theory of operation
-------------------
One request/response *exchange* at a time, numbered 1, 3, 5, ... (the ``stream_id`` of its events,
so the glue handles HTTP/1.x and HTTP/2 alike). Two small state machines drive an exchange:

- the receive side (``_Recv``): ``HEAD`` -> (``LENGTH`` | ``CHUNK_*`` | nothing) -> ``DONE``.
  ``receive_data`` appends to one buffer and parses as far as it can: the head of a request (found
  with ``bytes.find(b"\\r\\n\\r\\n")`` and parsed by ``h1_parse.parse_head``), then its body, which is
  delivered as ``DataReceived`` events as it arrives. A new head is parsed only when no exchange is
  in progress, i.e. after ``send_end`` of the previous response: pipelined requests stay buffered
  and come out of ``next_events()``.
- the send side (``_Send``), a table of ``(state, operation) -> next state``; a missing entry is a
  ``LocalProtocolError`` (the caller's bug): ``WAIT`` (request delivered) --headers--> ``BODY``
  --data*--> --end--> ``IDLE`` (exchange over; keep-alive resets the receive side to ``HEAD``).

The tables are the code, as h11's ``READERS`` and ``WRITERS`` are: ``_parse`` calls the reader
``READERS[state]`` until one cannot go on; every receive move goes through ``_recv_to`` (checked
against ``_RECV_TRANSITIONS``) and every send move through ``_step`` (``_SEND_TRANSITIONS``),
except on the path of every keep-alive GET, where the moves are written in place, each one a
move of those tables (``HEAD -> DONE`` and ``IDLE -> WAIT`` for a request without a body in
``_parse_head``; ``BODY -> IDLE`` and ``DONE -> HEAD`` for a whole response in ``send_response``).
The other speed: ``h1_parse.parse_head``'s caches (a repeated head or field section is parsed
once), the cache of response heads (``_head``), and ``send_headers``' single pass over the
response's fields (one string join per head).

Errors in what the peer sent never raise: ``H1Error`` from the parser becomes an error response
(``connection: close``, a short text body that never echoes request bytes) queued in
``data_to_send()``, a ``ConnectionTerminated(error_code=1, status=...)`` event, and ``closed``.
If the response of the current exchange has already started, nothing more can be said: the
connection is only closed.

Persistence (RFC 9112 §9.3): an HTTP/1.1 exchange keeps the connection unless either side says
``Connection: close``; HTTP/1.0 closes unless the client sent ``Connection: keep-alive``. The
connection also closes after a response that (a) is close-delimited (streaming to an HTTP/1.0
client), (b) started before the request body was completely received (an unanswered
``Expect: 100-continue`` included: the client may or may not send the body, so the framing of what
follows is unknown), (c) follows ``start_shutdown()``.

Bounds: the head (request line + fields) <= ``max_header_bytes`` (431, or 414 when the request line
is what is long), the target <= ``max_target_length`` (414), fields <= ``max_headers`` (431), the
body <= ``max_body_size`` (413, from Content-Length up front or while reading chunks), trailers <=
``max_header_bytes`` (431), a chunk-size line <= 4 KiB with its extensions (400). While a response
is in progress the bytes of later pipelined requests are only buffered, up to
``max_pipeline_bytes`` (1 MiB): past that, buffered and later input is discarded and the connection
closes after the current response (unanswered pipelined requests may be retried by the client,
RFC 9112 §9.3.2).

EOF: when a request is complete and its response is in progress, EOF is a half-close: the response
(and complete pipelined requests already buffered) are still answered, then ``ConnectionTerminated
(remote=True)``. EOF between requests gives ``ConnectionTerminated(remote=True)``; EOF inside a head
or body gives ``ConnectionTerminated(remote=True, reason="EOF mid-request")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .caches import BoundedCache
from .errors import H1Error, LocalProtocolError
from .events import ConnectionTerminated, Event, Headers
from .events import message_complete as _message_complete
from .events import request_received as _request_received
from .h1_parse import RequestHead, check_line_ends, error_response_bytes, field_cache, head_cache, head_overflow, parse_head, status_line
from .h1_readers import read_chunked, read_length, read_upgrade
from .h1_states import BODY_STATES as _BODY_STATES
from .h1_states import RECV_NEXT as _RECV_NEXT
from .h1_states import SEND_TRANSITIONS as _SEND_TRANSITIONS
from .h1_states import Op as _Op
from .h1_states import Recv as _Recv
from .h1_states import Send as _Send
from .h1_writers import CHUNKED as _CHUNKED
from .h1_writers import LENGTH as _LENGTH
from .h1_writers import NO_BODY as _NO_BODY
from .h1_writers import UNTIL_CLOSE as _UNTIL_CLOSE
from .h1_writers import VALID_NAMES as _valid_names
from .h1_writers import check_name as _check_name
from .h1_writers import Writer
from .h1_writers import header_block as _header_block

__all__ = ["H1Config", "H1Connection", "READERS"]

H2C_MAX_BODY = 65536
_MAX_SEND = 1 << 30


@dataclass(frozen=True, kw_only=True, slots=True)
class H1Config:
    """Limits and options of an HTTP/1.x server connection (sizes in bytes).

    Attributes:
        max_target_length: longest request-target (414 beyond).
        max_header_bytes: largest head, request line and CRLFs included (431 beyond); also bounds
            the trailer section of a chunked body.
        max_body_size: largest request body, Content-Length or chunked total (413 beyond).
        max_headers: most field lines in a head or trailer section (431 beyond).
        max_pipeline_bytes: most bytes buffered ahead while a response is in progress.
        server_header: value of the ``server`` field added to responses ("" to add none).
        h2c_upgrade: honour ``Upgrade: h2c`` over cleartext (RFC 7540 §3.2).
    """

    max_target_length: int = 8192
    max_header_bytes: int = 65536
    max_body_size: int = 10 * 1024 * 1024
    max_headers: int = 128
    max_pipeline_bytes: int = 1024 * 1024
    server_header: str = "concurrency-lab"
    h2c_upgrade: bool = True


_DROP, _IS_LENGTH, _IS_DATE, _IS_SERVER = "drop", "content-length", "date", "server"
# response fields the connection looks at: the ones it owns are dropped, the others noted
_OUT_SPECIAL = {"connection": _DROP, "transfer-encoding": _DROP, "keep-alive": _DROP,
                "proxy-connection": _DROP, "upgrade": _DROP, "content-length": _IS_LENGTH,
                "date": _IS_DATE, "server": _IS_SERVER}
#: response heads already made, by what they depend on (``H1Connection._head``); emptied when full
_HEADS: BoundedCache = BoundedCache(512)  # process-wide, bounded: key -> (bytes, Writer, int, bool)


class H1Connection:
    """The server side of one HTTP/1.0 or HTTP/1.1 connection (RFC 9112); see the module docstring.

    Implements ``protocol.base.ServerConnection``. Extra members for the engine:
    ``set_date(value)``, ``idle``, ``awaiting_head_bytes``, ``send_timeout_error()``.

    Args:
        config: limits and options (``H1Config()`` when omitted).
        scheme: ``"http"`` or ``"https"`` (reported in ``RequestReceived.scheme``; no h2c over TLS).
    """

    http_version = "1.1"
    multiplexed = False

    def __init__(self, config: H1Config | None = None, *, scheme: str = "http") -> None:
        self.config = config if config is not None else H1Config()
        self.scheme = scheme
        c = self.config
        self._h2c = c.h2c_upgrade and scheme == "http"
        self._caches = (field_cache("1.0", c.max_headers, c.max_body_size),
                        field_cache("1.1", c.max_headers, c.max_body_size))
        self._heads = head_cache(c.max_target_length, c.max_header_bytes, c.max_headers, c.max_body_size)
        self._server = (f"server: {self.config.server_header}\r\n"
                        if self.config.server_header else "")
        self._date = ""
        self._date_value = ""
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._recv = _Recv.HEAD
        self._send = _Send.IDLE
        self._closed = False
        self._eof = False
        self._shutdown = False
        self._discarding = False
        self._next_id = 1
        self._stream_id = 0
        self._leading_ok = True
        self._scanned = 0
        # the current request
        self._req: RequestHead | None = None
        self._keep_alive = True
        self._left = 0
        self._body_total = 0
        # the current response
        self._framing = _NO_BODY
        self._to_send = 0

    # -- state for the engine -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True when the engine should close the socket once ``data_to_send()`` is flushed."""
        return self._closed

    @property
    def idle(self) -> bool:
        """Between requests with nothing buffered (the keep-alive idle timeout applies)."""
        return (not self._closed and self._recv is _Recv.HEAD and self._send is _Send.IDLE
                and not self._buf)

    @property
    def awaiting_head_bytes(self) -> bool:
        """Part of a request head (or of an h2c upgrade request) is buffered: the request-head
        timeout applies."""
        return not self._closed and ((self._recv is _Recv.HEAD and bool(self._buf))
                                     or self._recv is _Recv.UPGRADE)

    def set_date(self, value: str) -> None:
        """The ``Date`` value (an IMF-fixdate, RFC 9110 §5.6.7) added to responses lacking one."""
        if value != self._date_value:
            self._date_value = value
            self._date = f"date: {value}\r\n" if value else ""

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the peer (``b""`` = EOF); return the events they complete.

        Never raises for the peer's bytes: see the module docstring for errors and EOF.
        """
        if self._closed or self._recv is _Recv.CLOSED:
            return []
        if not data:
            self._eof = True
            return self._parse()
        if self._discarding:
            return []
        buf = self._buf
        buf += data
        if self._recv is _Recv.DONE:
            if len(buf) > self.config.max_pipeline_bytes:
                buf.clear()
                self._discarding = True
                self._keep_alive = False
            return []
        return self._parse()

    def next_events(self) -> list[Event]:
        """Events from bytes already buffered (the next pipelined request after ``send_end``)."""
        if self._closed or self._recv is not _Recv.HEAD or not (self._buf or self._eof):
            return []
        return self._parse()

    def _parse(self) -> list[Event]:
        events: list[Event] = []
        readers = READERS
        try:
            while True:  # each reader parses what it can: True = the state moved on, go again
                reader = readers.get(self._recv)
                if reader is None or not reader(self, events):
                    break
        except H1Error as e:
            events.append(self._fail(e.status, e.reason))
            return events
        if self._eof and not self._closed:
            state = self._recv
            if state is _Recv.HEAD:
                self._terminate(events, "EOF mid-request" if self._buf else "EOF")
            elif state in _BODY_STATES:
                self._terminate(events, "EOF mid-request")
        return events

    def _terminate(self, events: list[Event], reason: str) -> None:
        self._closed = True
        self._recv_to(_Recv.CLOSED)
        self._buf.clear()
        events.append(ConnectionTerminated(remote=True, reason=reason))

    def _parse_head(self, events: list[Event]) -> bool:
        buf = self._buf
        if not buf:
            return False
        config = self.config
        if buf[0] == 13 and self._leading_ok:  # one empty line before a request (RFC 9112 §2.2)
            if len(buf) < 2:
                return False
            if buf[1] == 10:
                del buf[:2]
                self._leading_ok = False
                if not buf:
                    return False
        start = self._scanned
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            n = len(buf)
            if n > config.max_header_bytes:
                raise head_overflow(buf, config.max_target_length)
            stop = n - 1 if buf[-1] == 13 else n
            begin = max(0, start - 1)
            if begin and buf[begin] == 10:  # keep a CRLF pair whole
                begin -= 1
            if not check_line_ends(buf[begin:stop]):
                raise H1Error(400, "bare CR or LF in the request head")
            self._scanned = max(0, n - 3)
            return False
        self._scanned = 0
        head = buf[:end]
        del buf[:end + 4]
        req = parse_head(head, max_target_length=config.max_target_length,
                         max_header_bytes=config.max_header_bytes, max_headers=config.max_headers,
                         max_body_size=config.max_body_size, caches=self._caches, heads=self._heads)
        sid = self._stream_id = self._next_id
        self._next_id = sid + 2
        self._req = req
        self._keep_alive = req.keep_alive and not self._shutdown
        if (req.upgrade_h2c is not None and self._h2c and not req.chunked
                and (req.content_length or 0) <= H2C_MAX_BODY
                and not (req.expect_continue and req.content_length)):
            self._left = req.content_length or 0
            self._recv_to(_Recv.UPGRADE)
            return True
        if self._send is _Send.IDLE:
            self._send = _Send.WAIT  # _step(..., _Op.REQUEST), in place: the one legal move
        else:
            self._step(self._stream_id, _Op.REQUEST)  # raises
        if req.chunked:
            self._recv_to(_Recv.CHUNK_SIZE)
            self._body_total = 0
            end_stream = False
        elif req.content_length:
            self._recv_to(_Recv.LENGTH)
            self._left = req.content_length
            end_stream = False
        else:
            self._recv = _Recv.DONE  # _recv_to(_Recv.DONE), in place: this is the HEAD reader
            end_stream = True
        events.append(_request_received(sid, req.method, req.target, req.host, self.scheme,
                                        req.version, req.headers, req.expect_continue, end_stream))
        if end_stream:
            events.append(_message_complete(sid, ()))
        return True

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, status: int, reason: str) -> ConnectionTerminated:
        """Answer ``status`` (when no response has started) and close."""
        if self._send is not _Send.BODY:
            self._queue_error(status, reason)
        self._closed = True
        self._recv_to(_Recv.CLOSED)
        self._buf.clear()
        return ConnectionTerminated(error_code=1, status=status, reason=reason)

    def _queue_error(self, status: int, reason: str) -> None:
        self._out.append(error_response_bytes(status, reason, f"{self._date}{self._server}"))

    def send_timeout_error(self, reason: str = "request head not received in time") -> None:
        """A request timeout fired (the head's, or the body's): queue 408 Request Timeout unless
        a response has started on this exchange, and close."""
        if self._closed:
            return
        if self._send is not _Send.BODY:
            self._queue_error(408, reason)
        self._closed = True
        self._recv_to(_Recv.CLOSED)

    timeout_response = send_timeout_error

    # -- sending ------------------------------------------------------------------------------

    def _step(self, stream_id: int, op: _Op) -> bool:
        """Apply ``op`` to the send state; False when the connection is closed (ignore the call).

        Raises:
            LocalProtocolError: ``stream_id`` is not the current exchange, or ``op`` is not allowed
                in the current send state (no entry in ``_SEND_TRANSITIONS``).
        """
        if self._closed:
            return False
        nxt = _SEND_TRANSITIONS.get((self._send, op))  # the one place the send state changes
        if stream_id != self._stream_id or nxt is None:
            raise LocalProtocolError(f"{op.value} on stream {stream_id} not allowed: "
                                     f"{self._send.value} on stream {self._stream_id}")
        self._send = nxt
        return True

    def _recv_to(self, nxt: _Recv) -> None:
        """The one place the receive state changes: ``_RECV_TRANSITIONS`` or LocalProtocolError
        (a bug in this module: the readers only make the moves of the table)."""
        if nxt not in _RECV_NEXT[self._recv]:  # _RECV_TRANSITIONS, indexed by state
            raise LocalProtocolError(f"receive state {self._recv.name} -> {nxt.name}")
        self._recv = nxt

    def send_informational(self, stream_id: int, status: int, headers: Headers = ()) -> None:
        """Send a 1xx response other than 101 (e.g. 100 Continue); none to HTTP/1.0 clients
        (RFC 9110 §15.2).

        Raises:
            LocalProtocolError: not 1xx, 101, an invalid header, or the head was sent already.
        """
        if not 100 <= status <= 199 or status == 101:
            raise LocalProtocolError(f"{status} is not an informational status this can send")
        if not self._step(stream_id, _Op.INFORMATIONAL):
            return
        if self._req.version == "1.0":
            return
        self._out.append(status_line(status) + _header_block(headers).encode("latin-1") + b"\r\n")

    def send_headers(self, stream_id: int, status: int, headers: Headers, *, end_stream: bool = False) -> None:
        """Send the response head (RFC 9112 §4, §6); the connection owns framing and persistence.

        Adds ``date`` (after ``set_date``) and ``server`` when absent; drops ``connection``,
        ``transfer-encoding``, ``keep-alive``, ``proxy-connection`` and ``upgrade``; frames with
        the given ``content-length``, else ``content-length: 0`` when ``end_stream`` (not for
        204/304), else chunked (HTTP/1.1) or until close (HTTP/1.0); adds ``connection: close``
        when the connection will close. ``end_stream=True`` also ends the exchange. HEAD, 204 and
        304 responses carry no body: ``send_data`` drops theirs. Ignored once ``closed``.

        Raises:
            LocalProtocolError: not awaiting a response head, a status outside 200..999, an
                invalid field name or value, or an invalid content-length.
        """
        head = self._head(stream_id, status, headers, end_stream)
        if head is None:
            return
        self._out.append(head)
        if end_stream:
            self.send_end(stream_id)

    def send_response(self, stream_id: int, status: int, headers: Headers, body: bytes) -> None:
        """Send a whole response at once: ``send_headers`` + ``send_data(body)`` + ``send_end``
        (an empty ``body``: ``send_headers(..., end_stream=True)``), the head and a
        content-length framed body queued as one piece.

        Raises:
            LocalProtocolError: as those three.
        """
        head = self._head(stream_id, status, headers, not body)
        if head is None:
            return
        if body and self._framing is _LENGTH and len(body) == self._to_send:
            self._to_send = 0
            self._out.append(head + body)
            if self._keep_alive and not self._discarding and self._recv is _Recv.DONE:
                # send_end's common case, inlined: DATA and END from BODY (_SEND_TRANSITIONS:
                # BODY -> BODY -> IDLE), all the body sent, the connection kept, DONE -> HEAD
                self._send = _Send.IDLE
                self._recv = _Recv.HEAD
                self._req = None
                self._leading_ok = True
                return
            self._step(stream_id, _Op.DATA)
        else:
            self._out.append(head)
            if body:
                self.send_data(stream_id, body)
        self.send_end(stream_id)

    def _head(self, stream_id: int, status: int, headers: Headers, end_stream: bool) -> bytes | None:
        """Move the send state to the head and return its bytes (status line to the empty line),
        ``None`` once the connection is closed; sets the framing, the body length to send and
        whether the connection stays open. Heads are cached by everything they depend on (a
        repeated head skips the field checks it passed).

        Raises:
            LocalProtocolError: a status outside 200..999, not awaiting a head (``_step``), or
                what ``_make_head`` raises.
        """
        if not 200 <= status <= 999:
            raise LocalProtocolError(f"send_headers cannot send status {status}")
        if not self._step(stream_id, _Op.HEADERS):
            return None
        req = self._req
        keep = self._keep_alive and not self._shutdown and self._recv is _Recv.DONE
        try:
            key = (status, headers if type(headers) is tuple else tuple(headers), end_stream, keep,
                   req.method, req.version, req.keep_alive_header, self._date, self._server)
            made = _HEADS.data.get(key)
        except TypeError:  # unhashable header pairs: no cache
            key = made = None
        if made is None:
            made = self._make_head(status, headers, end_stream, keep, req)
            if key is not None:
                _HEADS.remember(key, made)
        data, self._framing, self._to_send, self._keep_alive = made
        return data

    def _make_head(self, status: int, headers: Headers, end_stream: bool, keep: bool,
                   req: RequestHead) -> tuple[bytes, Writer, int, bool]:
        """``(head bytes, framing, body length to send, keep-alive)`` for ``_head``.

        Raises:
            LocalProtocolError: an invalid field name or value, or an invalid content-length.
        """
        parts = []
        append = parts.append
        length = None
        has_date = has_server = False
        valid = _valid_names
        for name, value in headers:
            kind = _OUT_SPECIAL.get(name)
            if kind is not None:
                if kind is _DROP:
                    continue
                if kind is _IS_LENGTH:
                    if status == 204:
                        continue
                    if not value.isdigit() or not value.isascii():
                        raise LocalProtocolError("invalid content-length")
                    length = int(value)
                elif kind is _IS_DATE:
                    has_date = True
                else:
                    has_server = True
            elif name not in valid:
                _check_name(name)
            append(f"{name}: {value}\r\n")
        block = "".join(parts)
        n = len(parts)
        if block.count("\n") != n or block.count("\r") != n or "\0" in block:
            raise LocalProtocolError("CR, LF or NUL in a header value")
        if self._date and not has_date:
            block += self._date
        if not has_server and self._server:
            block += self._server
        to_send = 0
        if status == 204 or status == 304 or req.method == "HEAD":
            framing = _NO_BODY
        elif length is not None:
            framing = _LENGTH
            to_send = length
        elif end_stream:
            framing = _NO_BODY
            block += "content-length: 0\r\n"
        elif req.version == "1.1":
            framing = _CHUNKED
            block += "transfer-encoding: chunked\r\n"
        else:
            framing = _UNTIL_CLOSE
            keep = False
        if not keep:
            block += "connection: close\r\n\r\n"
        elif req.keep_alive_header:
            block += "connection: keep-alive\r\n\r\n"
        else:
            block += "\r\n"
        try:
            data = block.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError("header values must be ISO-8859-1") from None
        return status_line(status) + data, framing, to_send, keep

    def max_send_size(self, stream_id: int) -> int:
        """A large constant: HTTP/1.x has no flow control (TCP's is the engine's business)."""
        return _MAX_SEND

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send part of the body: chunk-encoded for chunked framing, dropped for HEAD/204/304.

        Raises:
            LocalProtocolError: the head was not sent, or more than the given content-length.
        """
        if not self._step(stream_id, _Op.DATA):
            return
        if data:
            self._framing.data(self, data)  # h1_writers: content-length, chunked, until close, none
        if end_stream:
            self.send_end(stream_id)

    def send_data_external(self, stream_id: int, nbytes: int) -> bool:
        """Account for ``nbytes`` of body that the engine writes itself, right after the bytes
        of ``data_to_send()`` (for example with ``socket.sendfile``, zero-copy).

        Only a content-length framed body can be sent this way (chunked framing would need
        chunk lines around the file's bytes). Returns ``False``, changing nothing, when the body
        must go through ``send_data`` instead (chunked or until-close framing, a HEAD, 204 or
        304 response, or a closed connection).

        Raises:
            LocalProtocolError: the head was not sent, or ``nbytes`` exceeds the content-length.
        """
        if self._send is not _Send.BODY or stream_id != self._stream_id:
            raise LocalProtocolError("send_data_external before send_headers")
        if self._closed or self._framing is not _LENGTH:
            return False
        if nbytes > self._to_send:
            raise LocalProtocolError("more body than content-length")
        self._to_send -= nbytes
        return True

    def send_end(self, stream_id: int, trailers: Headers = ()) -> None:
        """End the response (the last chunk and trailers when chunked; trailers are dropped
        otherwise) and so the exchange: the connection closes or waits for the next request.

        Raises:
            LocalProtocolError: the head was not sent, or less body than the content-length (the
                connection is closed then).
        """
        if not self._step(stream_id, _Op.END):
            return
        self._framing.end(self, trailers)
        if not self._keep_alive or self._discarding or self._recv is not _Recv.DONE:
            self._closed = True
            self._recv_to(_Recv.CLOSED)
            return
        self._recv_to(_Recv.HEAD)
        self._req = None
        self._leading_ok = True

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abort the response: HTTP/1.x can only close the connection."""
        self._closed = True
        self._recv_to(_Recv.CLOSED)

    def start_shutdown(self) -> None:
        """Take no more requests: the response in progress gets ``connection: close`` (if its head
        is not sent yet) and the connection closes after it; closes at once when idle."""
        self._shutdown = True
        self._keep_alive = False
        if self._send is _Send.IDLE:
            self._closed = True
            self._recv_to(_Recv.CLOSED)

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return bytes (a cheap look, nothing taken)."""
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """Return and clear the bytes to write to the socket."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data


#: The receive side, h11's READERS: the reader for each state; DONE (awaiting the response's end)
#: and CLOSED have none. A reader returns True when it moved the state on (parse again).
READERS: dict[_Recv, Callable[[H1Connection, list[Event]], bool]] = {
    _Recv.HEAD: H1Connection._parse_head,
    _Recv.LENGTH: read_length,
    _Recv.CHUNK_SIZE: read_chunked,
    _Recv.CHUNK_DATA: read_chunked,
    _Recv.CHUNK_CRLF: read_chunked,
    _Recv.TRAILERS: read_chunked,
    _Recv.UPGRADE: read_upgrade,
}
