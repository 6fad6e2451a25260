"""The asyncio engine turns Nagle off on every accepted connection.

asyncio's transports set TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP; sockets
accepted from a listener made with ``socket.socket(AF_INET, SOCK_STREAM)`` have proto 0, so the
engine must do it itself. Without it a response head followed by a small ``sendfile`` body waits
for the client's delayed ACK (about 40 ms a static file on Linux).
"""

from __future__ import annotations

import asyncio
import socket

from engines.asyncioloop import AsyncioEngine, Connection
from engines.config import ServerConfig


class _Transport:
    """Just enough of an asyncio transport for ``connection_made``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written = b""

    def get_extra_info(self, name: str, default=None):
        return {"socket": self.sock, "ssl_object": None, "peername": ("127.0.0.1", 40000),
                "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_connection_made_sets_tcp_nodelay():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.proto == 0  # what asyncio's own _set_nodelay skips
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        engine = AsyncioEngine(app=None, config=ServerConfig(), listeners=[])
        engine.loop = asyncio.new_event_loop()
        try:
            conn = Connection(engine, listener=None)
            conn.connection_made(_Transport(sock))
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            engine.loop.close()
