"""A minimal raw HTTP/1.1 client for engine tests: exact bytes out, responses parsed back."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field

__all__ = ["RawResponse", "RawClient", "exchange", "wait_in_flight"]


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    version: str = "HTTP/1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k == name.lower():
                return v
        return default


class RawClient:
    """One TCP connection to 127.0.0.1:port; ``send`` raw bytes, ``read_response`` one at a time."""

    def __init__(self, port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed mid-line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed mid-body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head: bool = False) -> RawResponse:
        """Read one response (1xx included). ``head``: the request was HEAD (no body follows)."""
        version, status, *reason = self._line().decode("latin-1").split(" ", 2)
        resp = RawResponse(int(status), reason[0] if reason else "", version=version)
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            resp.headers.append((name.strip().lower(), value.strip()))
        if head or resp.status < 200 or resp.status in (204, 304):
            return resp
        if (resp.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
            resp.body = body
        elif resp.header("content-length") is not None:
            resp.body = self._exact(int(resp.header("content-length")))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_by_peer(self) -> bool:
        """True if the server closed the connection (reads EOF) and sent nothing more."""
        try:
            return not self.buf and self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False


def exchange(port: int, data: bytes, count: int = 1, head: bool = False) -> list[RawResponse]:
    """Send ``data`` on a new connection and read ``count`` responses."""
    with RawClient(port) as c:
        c.send(data)
        return [c.read_response(head=head) for _ in range(count)]


def wait_in_flight(port: int, count: int, timeout: float = 10.0) -> None:
    """Poll ``GET /_metrics`` (a new connection each time) until at least ``count`` handlers are
    in flight besides the poll itself: the requests sent before have reached their handlers.

    Raises:
        AssertionError: not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        # A short timeout per poll: a processpool worker may have accepted the poll's connection
        # just before blocking in a handler; it would answer only afterwards, so ask again on a
        # new connection, which a free worker takes.
        try:
            with RawClient(port, timeout=0.25) as c:
                c.send(b"GET /_metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                seen = json.loads(c.read_response().body)["in_flight"] - 1
        except (socket.timeout, TimeoutError):
            continue
        if seen >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{seen} handlers in flight, expected {count}")
