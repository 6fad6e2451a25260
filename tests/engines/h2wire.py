"""A raw HTTP/2 client for engine tests: frames built with ``hyperframe``/``hpack``, sent over a
real socket (plain h2c with prior knowledge, or TLS with ALPN h2), the server's frames read back.

It behaves as h2spec's client does (summerwind/h2spec ``spec/connection.go``): the handshake
sends the preface and SETTINGS(INITIAL_WINDOW_SIZE=65535), acknowledges the server's SETTINGS
and waits for its ACK; received DATA is acknowledged with WINDOW_UPDATE; each wait for a frame
gives up after ``timeout`` seconds. The ``expect_*`` checks follow h2spec's verifiers (RFC 9113
§5.4): a *connection error* is a GOAWAY with one of the codes and then the TCP connection closed
(stricter than h2spec, which also accepts a bare close); a *stream error* is RST_STREAM or GOAWAY
with one of the codes (or the connection closed).
"""

from __future__ import annotations

import socket
import ssl
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

__all__ = ["PREFACE", "CLOSED", "TIMEOUT", "H2Wire", "raw", "DataFrame", "HeadersFrame",
           "ContinuationFrame", "PriorityFrame", "RstStreamFrame", "SettingsFrame", "PingFrame",
           "GoAwayFrame", "WindowUpdateFrame"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CLOSED = "connection closed"
TIMEOUT = "timeout"


def raw(type_: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame from its parts (for frames hyperframe refuses to build: wrong lengths, ids)."""
    return len(payload).to_bytes(3, "big") + bytes((type_, flags)) + stream_id.to_bytes(4, "big") + payload


class H2Wire:
    """One HTTP/2 connection to ``127.0.0.1:port`` driven frame by frame.

    Args:
        port: the server's port. tls: wrap in TLS offering ALPN ``alpn`` (certificate not
        checked: the development certificate is self-signed). timeout: seconds each wait for a
        frame lasts.
    """

    def __init__(self, port: int, *, tls: bool = False, timeout: float = 3.0,
                 alpn: tuple[str, ...] = ("h2",)) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.tls = tls
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(list(alpn))
            try:
                sock = ctx.wrap_socket(sock, server_hostname="localhost")
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.port = port
        self.timeout = timeout
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.closed = False
        self.server_settings: dict[int, int] = {}
        self.window = {0: 65535}
        self.auto_window = True
        self._block: list[bytes] = []

    @property
    def alpn(self) -> str | None:
        """The protocol ALPN chose (TLS only)."""
        return self.sock.selected_alpn_protocol() if self.tls else None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "H2Wire":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, *items: bytes | Frame) -> None:
        """Write frames (hyperframe objects) or raw bytes, in one ``sendall``."""
        data = b"".join(i if isinstance(i, (bytes, bytearray)) else i.serialize() for i in items)
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Preface + SETTINGS; wait for the server's SETTINGS (acknowledged) and our ACK."""
        self.send(PREFACE, SettingsFrame(0, settings=settings if settings is not None else {4: 65535}))
        local = remote = False
        while not (local and remote):
            f = self.next_frame()
            assert isinstance(f, Frame), f"handshake ended by {f}"
            if isinstance(f, SettingsFrame):
                if "ACK" in f.flags:
                    local = True
                else:
                    remote = True
                    self.server_settings.update(f.settings)
                    self.send(SettingsFrame(0, flags=["ACK"]))

    def fields(self, method: str = "GET", path: str = "/", extra: list | None = None) -> list:
        """h2spec's common request fields (``:method :scheme :path :authority``) plus ``extra``."""
        return [(":method", method), (":scheme", "https" if self.tls else "http"), (":path", path),
                (":authority", f"127.0.0.1:{self.port}")] + list(extra or [])

    def block(self, fields: list) -> bytes:
        """HPACK-encode ``fields`` with this connection's encoder."""
        return self.enc.encode(fields)

    def headers(self, sid: int, fields: list | None = None, *, end_stream: bool = True,
                end_headers: bool = True, **kw) -> HeadersFrame:
        """A HEADERS frame carrying ``fields`` (default: GET /)."""
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        return HeadersFrame(sid, data=self.block(fields if fields is not None else self.fields()),
                            flags=flags, **kw)

    def request(self, sid: int, method: str = "GET", path: str = "/", body: bytes = b"",
                extra: list | None = None) -> None:
        """Send one request on stream ``sid`` (HEADERS, then DATA when there is a body)."""
        hf = self.headers(sid, self.fields(method, path, extra), end_stream=not body)
        self.send(hf, *([DataFrame(sid, data=body, flags=["END_STREAM"])] if body else []))

    # -- receiving ------------------------------------------------------------------------

    def next_frame(self, timeout: float | None = None) -> Frame | str:
        """The next frame, or ``CLOSED`` (EOF/reset), or ``TIMEOUT``. Header blocks are decoded
        into ``frame.decoded`` on the frame carrying END_HEADERS."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    f, _ = Frame.parse_frame_header(memoryview(self.buf[:9]))
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    self._after(f)
                    return f
            if self.closed:
                return CLOSED
            left = deadline - time.monotonic()
            if left <= 0:
                return TIMEOUT
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return TIMEOUT
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
            self.buf += chunk

    def _after(self, f: Frame) -> None:
        if isinstance(f, (HeadersFrame, ContinuationFrame)):
            self._block.append(f.data)
            if "END_HEADERS" in f.flags:
                f.decoded = [(k.decode() if isinstance(k, bytes) else k,
                              v.decode() if isinstance(v, bytes) else v)
                             for k, v in self.dec.decode(b"".join(self._block))]
                self._block = []
        elif isinstance(f, DataFrame) and self.auto_window and f.flow_controlled_length:
            n = f.flow_controlled_length
            self.window[0] -= n
            self.window[f.stream_id] = self.window.get(f.stream_id, 65535) - n
            ups = []
            for sid in (0, f.stream_id):
                if self.window[sid] <= 32768 and not (sid and "END_STREAM" in f.flags):
                    ups.append(WindowUpdateFrame(sid, window_increment=65535 - self.window[sid]))
                    self.window[sid] = 65535
            if ups:
                self.send(*ups)

    def wait_for(self, kind: type, pred=None) -> Frame:
        """Frames until one of type ``kind`` (matching ``pred``); AssertionError otherwise."""
        seen = []
        while True:
            f = self.next_frame()
            if isinstance(f, str):
                raise AssertionError(f"expected {kind.__name__}, got {f} after {seen}")
            if isinstance(f, kind) and (pred is None or pred(f)):
                return f
            seen.append(type(f).__name__)

    def response(self, sid: int) -> tuple[list, bytes, list]:
        """Read frames until stream ``sid`` ends: ``(headers, body, trailers)``; header lists
        hold ``(name, value)`` strings. Raises AssertionError on RST_STREAM, GOAWAY, EOF."""
        heads: list[list] = []
        body = b""
        while True:
            f = self.next_frame()
            if isinstance(f, str) or isinstance(f, GoAwayFrame):
                raise AssertionError(f"stream {sid}: {f}")
            if f.stream_id != sid:
                continue
            if isinstance(f, RstStreamFrame):
                raise AssertionError(f"stream {sid} reset: {f.error_code}")
            if isinstance(f, DataFrame):
                body += f.data
            elif hasattr(f, "decoded"):
                if f.decoded and f.decoded[0][1][:1] == "1" and f.decoded[0][0] == ":status":
                    continue  # informational
                heads.append(f.decoded)
            if "END_STREAM" in f.flags and not isinstance(f, ContinuationFrame):
                if isinstance(f, HeadersFrame) and "END_HEADERS" not in f.flags:
                    continue
                break
        return heads[0], body, heads[1] if len(heads) > 1 else []

    # -- h2spec's verifiers -----------------------------------------------------------------

    def expect_connection_error(self, *codes: int) -> GoAwayFrame:
        """GOAWAY with one of ``codes``, then EOF (the server closed the TCP connection)."""
        seen = []
        while True:
            f = self.next_frame()
            if isinstance(f, GoAwayFrame):
                assert f.error_code in codes, f"GOAWAY {f.error_code}, expected {codes}"
                end = self.next_frame()
                while isinstance(end, Frame):
                    end = self.next_frame()
                assert end == CLOSED, f"no close after GOAWAY: {end}"
                return f
            assert not isinstance(f, str), f"expected GOAWAY {codes}, got {f} after {seen}"
            seen.append(type(f).__name__)

    def expect_stream_error(self, *codes: int) -> Frame | str:
        """RST_STREAM or GOAWAY with one of ``codes``, or the connection closed."""
        seen = []
        while True:
            f = self.next_frame()
            if f == CLOSED:
                return f
            assert f != TIMEOUT, f"expected RST_STREAM/GOAWAY {codes}, timed out after {seen}"
            if isinstance(f, (RstStreamFrame, GoAwayFrame)):
                assert f.error_code in codes, f"{type(f).__name__} {f.error_code}, expected {codes}"
                return f
            seen.append(type(f).__name__)

    def expect_stream_close(self) -> Frame:
        """A DATA or HEADERS frame with END_STREAM."""
        return self.wait_for((DataFrame, HeadersFrame), lambda f: "END_STREAM" in f.flags)

    def expect_ping_ack(self, data: bytes = b"\x00" * 8) -> PingFrame:
        """A PING with ACK echoing ``data``; fails if a PING echoes something else first."""
        f = self.wait_for(PingFrame)
        assert "ACK" in f.flags and f.opaque_data == data, (f.flags, f.opaque_data)
        return f

    def expect_close(self) -> None:
        """The server closes the TCP connection (frames before it are ignored)."""
        f = self.next_frame()
        while isinstance(f, Frame):
            f = self.next_frame()
        assert f == CLOSED, f
