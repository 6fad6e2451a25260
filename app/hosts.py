"""Host names: the host of a Host / ``:authority`` value, certificate name matching, request ids.

Pure string functions shared by the router's virtual hosts (:meth:`app.routing.App.host`) and the
engines' glue (``engines/session.py``: 421 Misdirected Request over HTTP/2, ``X-Request-Id``).
No sockets, no TLS objects: the names a certificate covers are given as strings.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["host_of", "name_matches", "cert_covers", "safe_request_id"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def host_of(authority: str) -> str:
    """The host of ``authority`` (``host[:port]``, RFC 9110 §7.2 / RFC 3986 §3.2.2): lowercase,
    port and a trailing dot removed, IPv6 literals without brackets.

    ``"Example.COM:8080"`` -> ``"example.com"``; ``"[::1]:8443"`` -> ``"::1"``; ``""`` -> ``""``.
    A malformed value (``"[::1"``) gives ``""``; nothing is raised.
    """
    if not authority:
        return ""
    if "@" in authority:  # userinfo is not allowed in Host (RFC 9110 §4.2.4); ignore it
        authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return ""
        return authority[1:end].lower()
    host, _, _port = authority.partition(":")
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def name_matches(pattern: str, host: str) -> bool:
    """True when certificate name ``pattern`` covers ``host`` (RFC 6125 §6.4): equal ignoring
    case, or ``*.example.com`` covering exactly one more leftmost label (``a.example.com``, not
    ``example.com`` nor ``a.b.example.com``). Wildcards never match IP addresses. IP addresses
    compare as addresses (``::1`` equals ``0:0:0:0:0:0:0:1``)."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if not host:
        return False
    if pattern == host:
        return True
    if pattern.startswith("*."):
        if _is_ip(host):
            return False
        label, dot, rest = host.partition(".")
        return bool(dot and label and rest == pattern[2:])
    if ":" in pattern or ":" in host:
        try:
            return ipaddress.ip_address(pattern) == ipaddress.ip_address(host)
        except ValueError:
            return False
    return False


def cert_covers(names: tuple[str, ...] | list[str], host: str) -> bool:
    """True when one of a certificate's ``names`` (DNS and IP subjectAltNames) covers ``host``
    (see :func:`name_matches`); used for 421 Misdirected Request (RFC 9110 §15.5.20,
    RFC 9113 §9.1.1)."""
    return any(name_matches(name, host) for name in names)


def safe_request_id(value: str | None) -> str | None:
    """``value`` when it is a safe client-supplied request id (1..128 of
    ``[A-Za-z0-9._:@/+=-]``: no spaces, quotes or control characters, so it can be echoed in a
    header and written to a log line as it is), else ``None``."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None
