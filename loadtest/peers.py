"""The peers' side of the comparison that is not the lab's app.

``plaintext_wsgi`` is the WSGI callable ``gunicorn -k gthread`` serves in ``python -m loadtest.bench``:
the same answer as the lab's ``GET /plaintext`` (``Hello, World!``, ``text/plain``),
with no routing at all, so gunicorn's figure is a ceiling for a thread-per-request WSGI server.
(uvicorn and hypercorn serve the lab's own app through ``app/asgi.py``.)
"""

from __future__ import annotations

from typing import Callable, Iterable

__all__ = ["plaintext_wsgi", "BODY", "HEADERS"]

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def plaintext_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """WSGI app: ``200 Hello, World!`` (text/plain) for every request."""
    start_response("200 OK", HEADERS)
    return [BODY]
