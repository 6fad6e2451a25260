"""Listening sockets and TLS contexts shared by every engine (no HTTP here).

A :class:`Listener` is a bound, listening socket plus, for TLS, an ``ssl.SSLContext`` offering
ALPN ``h2`` and ``http/1.1`` (RFC 7301; RFC 9113 §3.2). A development certificate is made on first
use with trustme (a throwaway CA and a leaf for localhost/127.0.0.1/::1) and kept under
``.certs/`` so browsers and curl can be pointed at the CA file once.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass

from .config import ROOT, ServerConfig

__all__ = ["Listener", "open_listeners", "make_tls_context", "dev_certificate", "tune_socket"]


@dataclass(slots=True)
class Listener:
    """A listening socket; ``tls`` is the SSL context for TLS listeners, else ``None``."""

    sock: socket.socket
    tls: ssl.SSLContext | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.sock.getsockname()[:2]

    @property
    def url(self) -> str:
        """``http://host:port`` or ``https://host:port`` (IPv6 hosts in brackets)."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


def tune_socket(sock: socket.socket) -> None:
    """Set TCP_NODELAY on an accepted connection (responses are written whole; Nagle only delays)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def dev_certificate(directory: str | None = None) -> tuple[str, str, str]:
    """Make (once) a development CA and a certificate for localhost, 127.0.0.1 and ::1.

    Returns:
        ``(certfile, keyfile, ca_file)`` paths (PEM). Existing files are reused.
    """
    directory = directory or os.path.join(ROOT, ".certs")
    certfile = os.path.join(directory, "dev-cert.pem")
    keyfile = os.path.join(directory, "dev-key.pem")
    cafile = os.path.join(directory, "dev-ca.pem")
    if not all(os.path.exists(p) for p in (certfile, keyfile, cafile)):
        import trustme

        os.makedirs(directory, exist_ok=True)
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
        leaf.private_key_pem.write_to_path(keyfile)
        with open(certfile, "wb") as f:
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        ca.cert_pem.write_to_path(cafile)
    return certfile, keyfile, cafile


def make_tls_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    """A server context: TLS 1.2+, ALPN h2 then http/1.1, ciphers acceptable to RFC 9113 §9.2."""
    if certfile is None:
        certfile, keyfile, _ = dev_certificate()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def open_listeners(config: ServerConfig) -> list[Listener]:
    """Bind the plain listener (``host:port``) and, with ``--tls``, the TLS one (``tls_port``;
    when no ``--tls-port`` is given, TLS takes ``--port`` itself and no plain port is opened).

    Raises:
        OSError: a port is in use or the address is not available.
    """
    listeners: list[Listener] = []
    if not config.tls or config.tls_port is not None:
        listeners.append(Listener(_bind(config.host, config.port, config.backlog)))
    if config.tls:
        port = config.tls_port if config.tls_port is not None else config.port
        ctx = make_tls_context(config.certfile, config.keyfile)
        listeners.append(Listener(_bind(config.host, port, config.backlog), ctx))
    return listeners
