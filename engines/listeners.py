"""Listening sockets and TLS contexts shared by every engine (no HTTP here).

A :class:`Listener` is a bound, listening socket plus, for TLS, an ``ssl.SSLContext`` offering
ALPN ``h2`` and ``http/1.1`` (RFC 7301; RFC 9113 §3.2). A development certificate is made on first
use with trustme (a throwaway CA and a leaf for localhost/127.0.0.1/::1) and kept under
``.certs/`` so browsers and curl can be pointed at the CA file once.

Certificates per host name (SNI, RFC 6066 §3): ``--tls-cert HOST=CERT,KEY`` and ``--tls-host HOST``
(a leaf from the same development CA) give one context per name; the default context's
``sni_callback`` switches a handshake to the context whose certificate covers the name the client
asked for, and notes on the TLS object the name (``sni_name``) and the names the chosen
certificate covers (``cert_names``), which :func:`connection_info` hands to the app.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Iterator

from app.hosts import name_matches
from app.messages import ConnectionInfo

from .config import ROOT, ServerConfig

__all__ = ["Listener", "open_listeners", "make_tls_context", "dev_certificate", "dev_host_certificate",
           "certificate_names", "connection_info", "tune_socket"]


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


def bind(host: str, port: int, backlog: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` (IPv6 when ``host`` has a colon, v6 only), and
    listening unless ``listen`` is false. With ``reuse_port``, SO_REUSEPORT: sockets of this
    user bound to the same address form a group and the kernel spreads new connections over
    the listening ones (Linux >= 3.9; nginx ``reuseport``, gunicorn ``--reuse-port``).

    Raises:
        OSError: the address is in use or not available.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def _certs_lock(directory: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory/.lock``: servers starting at once make the dev CA once."""
    import fcntl

    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_leaf(leaf: Any, certfile: str, keyfile: str) -> None:
    _write_atomic(keyfile, leaf.private_key_pem.bytes())
    _write_atomic(certfile, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))


def dev_certificate(directory: str | None = None, *, need_ca_key: bool = False) -> tuple[str, str, str]:
    """Make (once) a development CA and a certificate for localhost, 127.0.0.1 and ::1.

    The CA's key is kept beside it (``dev-ca-key.pem``) so that :func:`dev_host_certificate` can
    issue more leaves from the same CA. ``need_ca_key=True`` remakes the set when an older
    ``.certs/`` lacks that key (clients must then trust the new ``dev-ca.pem``).

    Returns:
        ``(certfile, keyfile, ca_file)`` paths (PEM). Existing files are reused.
    """
    directory = directory or os.path.join(ROOT, ".certs")
    certfile = os.path.join(directory, "dev-cert.pem")
    keyfile = os.path.join(directory, "dev-key.pem")
    cafile = os.path.join(directory, "dev-ca.pem")
    cakey = os.path.join(directory, "dev-ca-key.pem")
    wanted = (certfile, keyfile, cafile) + ((cakey,) if need_ca_key else ())
    if all(os.path.exists(p) for p in wanted):
        return certfile, keyfile, cafile
    with _certs_lock(directory):
        if not all(os.path.exists(p) for p in wanted):
            import trustme

            ca = trustme.CA()
            _write_leaf(ca.issue_cert("localhost", "127.0.0.1", "::1"), certfile, keyfile)
            _write_atomic(cakey, ca.private_key_pem.bytes())
            _write_atomic(cafile, ca.cert_pem.bytes())
    return certfile, keyfile, cafile


def dev_host_certificate(host: str, directory: str | None = None) -> tuple[str, str]:
    """Make (once) a certificate for ``host`` (a DNS name, ``*.example.com`` or an IP address)
    issued by the development CA of :func:`dev_certificate`, for ``--tls-host``.

    Returns:
        ``(certfile, keyfile)`` paths (PEM) under ``.certs/``.

    Raises:
        ValueError: ``host`` is empty or has characters a host name cannot have.
    """
    host = host.strip().lower().rstrip(".")
    if not host or not re.fullmatch(r"(\*\.)?[a-z0-9.:-]+", host):
        raise ValueError(f"invalid host name {host!r}")
    directory = directory or os.path.join(ROOT, ".certs")
    _, _, cafile = dev_certificate(directory, need_ca_key=True)
    stem = os.path.join(directory, "host-" + host.replace("*", "_star_").replace(":", "_"))
    certfile, keyfile = stem + "-cert.pem", stem + "-key.pem"
    with _certs_lock(directory):
        with open(cafile, "rb") as f:
            ca_pem = f.read()
        fresh = all(os.path.exists(p) for p in (certfile, keyfile))
        if fresh:  # issued by the CA now in dev-ca.pem? (it is remade when its key was missing)
            with open(certfile, "rb") as f:
                fresh = _issuer_matches(f.read(), ca_pem)
        if not fresh:
            import trustme

            with open(os.path.join(directory, "dev-ca-key.pem"), "rb") as f:
                ca = trustme.CA.from_pem(ca_pem, f.read())
            _write_leaf(ca.issue_cert(host), certfile, keyfile)
    return certfile, keyfile


def _issuer_matches(leaf_pem: bytes, ca_pem: bytes) -> bool:
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError:
        return False
    return leaf.issuer == ca.subject


def certificate_names(certfile: str) -> tuple[str, ...]:
    """The DNS names and IP addresses the first certificate of ``certfile`` (PEM) covers: its
    subjectAltName entries (RFC 5280 §4.2.1.6), else its subject common name; lowercase.
    ``()`` when the file cannot be read or parsed."""
    from cryptography import x509

    try:
        with open(certfile, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return tuple(names)


#: ALPN protocols offered for each ``--http`` value (RFC 7301), most preferred first.
ALPN = {"auto": ["h2", "http/1.1"], "1": ["http/1.1"], "2": ["h2"]}


def _context(certfile: str, keyfile: str | None, http: str = "auto") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(ALPN[http])
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def make_tls_context(certfile: str | None, keyfile: str | None,
                     host_certs: list[tuple[str, str, str]] | tuple = (), http: str = "auto",
                     names: Any = certificate_names) -> ssl.SSLContext:
    """A server context: TLS 1.2+, ALPN h2 then http/1.1 (only one of them with ``http`` "2" or
    "1", see :data:`ALPN`), ciphers acceptable to RFC 9113 §9.2.

    Args:
        certfile, keyfile: the default certificate (PEM); the dev certificate when ``None``.
        host_certs: ``[(host, certfile, keyfile)]`` a certificate per host name (``*.example.com``
            for one label under it); a client whose SNI name is ``host`` gets that certificate
            (exact names before wildcards, in the order given; RFC 6066 §3), others the default.
        names: ``certfile -> the names it covers`` (default :func:`certificate_names`, which needs
            cryptography; an interpreter worker, which cannot load it, is handed them).

    The context's ``sni_callback`` sets ``sni_name`` (``None`` without SNI) and ``cert_names``
    (the names the chosen certificate covers) on each handshake's SSLSocket / SSLObject.

    Raises:
        OSError, ssl.SSLError: a file is missing or the key does not match the certificate.
    """
    if certfile is None:
        certfile, keyfile, _ = dev_certificate()
    ctx = _context(certfile, keyfile, http)
    default_names = names(certfile)
    others = [(h.strip().lower().rstrip("."), _context(c, k, http), names(c))
              for h, c, k in host_certs]

    def pick(server_name: str) -> tuple[ssl.SSLContext, tuple[str, ...]] | None:
        for exact in (True, False):
            for host, other, names in others:
                if (host == server_name) if exact else name_matches(host, server_name):
                    return other, names
        return None

    def on_sni(tls_obj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        tls_obj.sni_name = server_name
        tls_obj.cert_names = default_names
        if server_name and others:
            chosen = pick(server_name.lower())
            if chosen is not None:
                tls_obj.context, tls_obj.cert_names = chosen
        return None

    ctx.sni_callback = on_sni
    return ctx


def connection_info(connection_id: int, engine: str, peer: Any, local: Any,
                    tls_obj: Any = None) -> ConnectionInfo:
    """The :class:`ConnectionInfo` of an accepted connection (after its TLS handshake).

    Args:
        peer, local: socket addresses (``(host, port, ...)``) or ``None``.
        tls_obj: the handshaken ``ssl.SSLSocket`` / ``ssl.SSLObject``, ``None`` for plain TCP;
            its TLS version, ALPN protocol (``"http/1.1"`` when none was chosen), SNI name and
            certificate names are recorded.
    """
    peer = tuple(peer[:2]) if peer else None
    local = tuple(local[:2]) if local else None
    if tls_obj is None:
        return ConnectionInfo(connection_id=connection_id, engine=engine, peer=peer, local=local,
                              pid=os.getpid())
    return ConnectionInfo(connection_id=connection_id, engine=engine, peer=peer, local=local, tls=True,
                          tls_version=tls_obj.version(),
                          alpn=tls_obj.selected_alpn_protocol() or "http/1.1",
                          sni=getattr(tls_obj, "sni_name", None),
                          cert_names=getattr(tls_obj, "cert_names", ()), pid=os.getpid())


def open_listeners(config: ServerConfig) -> list[Listener]:
    """Bind the plain listener (``host:port``) and, with ``--tls``, the TLS one (``tls_port``;
    when no ``--tls-port`` is given, TLS takes ``--port`` itself and no plain port is opened).

    Raises:
        OSError: a port is in use or the address is not available.
    """
    listeners: list[Listener] = []
    # --reuse-port under the supervisor: the parent only reserves the ports (bound, not
    # listening); each worker listens on its own socket of the group (engines/supervisor.py).
    per_worker = config.reuse_port and config.supervised
    opts = {"reuse_port": config.reuse_port, "listen": not per_worker}
    if not config.tls or config.tls_port is not None:
        listeners.append(Listener(bind(config.host, config.port, config.backlog, **opts)))
    if config.tls:
        port = config.tls_port if config.tls_port is not None else config.port
        hosts = [(h, *dev_host_certificate(h)) for h in config.tls_hosts] + list(config.tls_certs)
        ctx = make_tls_context(config.certfile, config.keyfile, hosts, config.http)
        listeners.append(Listener(bind(config.host, port, config.backlog, **opts), ctx))
    return listeners
