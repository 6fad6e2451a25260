"""Sans-IO HTTP/1.x and HTTP/2 connections (see DESIGN.md and ``protocol.base``)."""

from .http1 import H1Config, H1Connection
from .h2_client import H2ClientConnection
from .h2_connection import H2Connection
from .h2_settings import H2Config

__all__ = [
    "H1Config",
    "H1Connection",
    "H2ClientConnection",
    "H2Config",
    "H2Connection",
]
