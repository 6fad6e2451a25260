"""The bare callables the peers serve in ``python -m loadtest experiment cost`` and
``python -m loadtest.bench``: what a user would pick instead of the lab, on equal terms.

Both answer every request with ``200 Hello, World!`` (``text/plain``, 13 octets), as the lab's
``GET /plaintext`` does, with no routing at all, so a peer's figure is a ceiling for that server.
``plaintext_wsgi`` (PEP 3333) is served by gunicorn's gthread worker and granian's WSGI
interface; ``plaintext_asgi`` (ASGI 3, HTTP scope) by uvicorn, hypercorn and granian's ASGI
interface. The peers serving the lab's own app go through ``app/asgi.py`` instead (a second,
labelled line in the results).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

__all__ = ["plaintext_wsgi", "plaintext_asgi", "BODY", "HEADERS"]

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
_ASGI_START = {"type": "http.response.start", "status": 200,
               "headers": [(k.lower().encode(), v.encode()) for k, v in HEADERS]}
_ASGI_BODY = {"type": "http.response.body", "body": BODY}


def plaintext_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """WSGI app: ``200 Hello, World!`` (text/plain) for every request."""
    start_response("200 OK", HEADERS)
    return [BODY]


async def plaintext_asgi(scope: dict, receive: Callable[[], Awaitable[dict]],
                         send: Callable[[dict], Awaitable[Any]]) -> None:
    """ASGI 3 app: ``200 Hello, World!`` (text/plain) for every HTTP request. Other scopes
    (lifespan) return at once: the servers then carry on without lifespan events."""
    if scope["type"] != "http":
        return
    await send(_ASGI_START)
    await send(_ASGI_BODY)
