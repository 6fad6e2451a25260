"""The bare callables the peers serve in ``python -m loadtest experiment cost`` and
``python -m loadtest.bench``: what a user would pick instead of the lab, on equal terms.

Both answer every request with ``200 Hello, World!`` (``text/plain``, 13 octets), as the lab's
``GET /plaintext`` does, with no routing at all, so a peer's figure is a ceiling for that server.
``plaintext_wsgi`` (PEP 3333) is served by gunicorn's gthread worker and granian's WSGI
interface; ``plaintext_asgi`` (ASGI 3, HTTP scope) by uvicorn, hypercorn and granian's ASGI
interface. The peers serving the lab's own app go through ``app/asgi.py`` instead (a second,
labelled line in the results).

``workload_wsgi`` / ``workload_asgi`` are the same bare callables with the three routes the
workers experiments ask of a peer at ``--workers W``: ``/cpu`` (the lab's own ``cpu_work`` with
its default ``n``, so a peer does exactly the app's CPU work), ``/io?ms=M`` (``time.sleep`` under
WSGI, ``asyncio.sleep`` under ASGI: a wait that holds a thread, or none) and anything else
``Hello, World!``. No routing library: a path compare, as a user's hand-written endpoint would.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qs

from app.lab import DEFAULT_CPU_N, cpu_work

__all__ = ["plaintext_wsgi", "plaintext_asgi", "workload_wsgi", "workload_asgi", "BODY", "HEADERS", "HYPERCORN_CONFIG"]

#: hypercorn's settings for the lab's runs (lifts its HTTP/2 defaults to the other servers' limits)
HYPERCORN_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hypercorn.toml")

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


def _wait_s(query: bytes | str) -> float:
    """``ms`` of an ``/io`` query string, in seconds (default 100 ms, at most 10 s)."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    try:
        return min(10_000, max(0, int(parse_qs(query).get("ms", ["100"])[0]))) / 1000.0
    except ValueError:
        return 0.1


def _cpu_body() -> bytes:
    return f"cpu n={DEFAULT_CPU_N} result={cpu_work(DEFAULT_CPU_N)}\n".encode()


def workload_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """WSGI app: ``/cpu`` (the app's CPU work), ``/io?ms=M`` (``time.sleep``), else
    ``Hello, World!``; every answer 200 text/plain."""
    path = environ.get("PATH_INFO", "/")
    if path == "/cpu":
        body = _cpu_body()
    elif path == "/io":
        time.sleep(_wait_s(environ.get("QUERY_STRING", "")))
        body = b"waited\n"
    else:
        body = BODY
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def workload_asgi(scope: dict, receive: Callable[[], Awaitable[dict]],
                        send: Callable[[dict], Awaitable[Any]]) -> None:
    """ASGI 3 app: ``/cpu`` (the app's CPU work, blocking the loop as the lab's handler does),
    ``/io?ms=M`` (``asyncio.sleep``), else ``Hello, World!``; every answer 200 text/plain."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/cpu":
        body = _cpu_body()
    elif path == "/io":
        await asyncio.sleep(_wait_s(scope.get("query_string", b"")))
        body = b"waited\n"
    else:
        await send(_ASGI_START)
        await send(_ASGI_BODY)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
