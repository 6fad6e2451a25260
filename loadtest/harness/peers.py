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

__all__ = ["plaintext_wsgi", "plaintext_asgi", "workload_wsgi", "workload_asgi", "db_wsgi", "db_asgi", "BODY", "HEADERS", "HYPERCORN_CONFIG"]

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


# -- TechEmpower's database tests, as the peers' users run them (docs/database.md) ------------------
#
# The database is named by the environment (the harness sets it): LAB_DB_DSN (postgresql://...) and
# LAB_DB_POOL (connections per worker process). ``db_wsgi`` (gunicorn gthread) takes a blocking
# connection from a psycopg-pool ConnectionPool per worker process; ``db_asgi`` (uvicorn, granian)
# an asyncpg pool per worker process, as granian's TechEmpower entry does (4 per worker). Same
# routes and rules as the lab's (app/techempower.py): /db, /queries, /fortunes, /updates, and
# /db/wait?ms=M (pg_sleep) for the pool axis.

_DB: dict[str, Any] = {}


def _db_env() -> tuple[str, int]:
    return os.environ["LAB_DB_DSN"], int(os.environ.get("LAB_DB_POOL", "4"))


def _count(query: str) -> int:
    from app.techempower import query_count

    class _Q:  # query_count reads request.query
        pass

    q = _Q()
    q.query = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return query_count(q)  # type: ignore[arg-type]


def _json(body: Any) -> tuple[int, bytes, str]:
    import json

    return 200, json.dumps(body, separators=(",", ":")).encode(), "application/json"


def _fortunes_page(rows: list[tuple]) -> tuple[int, bytes, str]:
    from app.techempower import ADDITIONAL_FORTUNE, FORTUNES_TEMPLATE

    rows = [*rows, (0, ADDITIONAL_FORTUNE)]
    rows.sort(key=lambda r: r[1])
    return 200, FORTUNES_TEMPLATE.render(fortunes=rows).encode(), "text/html; charset=utf-8"


def db_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """WSGI app of the database routes on a psycopg-pool ConnectionPool per worker process."""
    import random

    from psycopg_pool import ConnectionPool

    pool = _DB.get("pool")
    if pool is None or _DB.get("pid") != os.getpid():
        dsn, size = _db_env()
        pool = _DB["pool"] = ConnectionPool(dsn, min_size=size, max_size=size, kwargs={"autocommit": True})
        _DB["pid"] = os.getpid()
    path, query = environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", "")
    world = "SELECT id, randomnumber FROM world WHERE id = %s"
    with pool.connection() as conn:
        if path == "/db":
            r = conn.execute(world, (random.randint(1, 10000),)).fetchone()
            status, body, kind = _json({"id": r[0], "randomNumber": r[1]})
        elif path == "/queries":
            rows = [conn.execute(world, (random.randint(1, 10000),)).fetchone() for _ in range(_count(query))]
            status, body, kind = _json([{"id": r[0], "randomNumber": r[1]} for r in rows])
        elif path == "/fortunes":
            status, body, kind = _fortunes_page(conn.execute("SELECT id, message FROM fortune").fetchall())
        elif path == "/updates":
            out = []
            for _ in range(_count(query)):
                r = conn.execute(world, (random.randint(1, 10000),)).fetchone()
                n = random.randint(1, 10000)
                conn.execute("UPDATE world SET randomnumber = %s WHERE id = %s", (n, r[0]))
                out.append({"id": r[0], "randomNumber": n})
            status, body, kind = _json(out)
        elif path == "/db/wait":
            conn.execute("SELECT pg_sleep(%s)", (_wait_s(query),))
            status, body, kind = 200, b"waited\n", "text/plain"
        else:
            status, body, kind = 404, b"not found\n", "text/plain"
    start_response(f"{status} {'OK' if status == 200 else 'Not Found'}",
                   [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


async def db_asgi(scope: dict, receive: Callable[[], Awaitable[dict]],
                  send: Callable[[dict], Awaitable[Any]]) -> None:
    """ASGI app of the database routes on an asyncpg pool per worker process (made in its loop)."""
    import random

    if scope["type"] != "http":
        return
    pool = _DB.get("apool")
    if pool is None or _DB.get("apid") != os.getpid():
        import asyncpg

        dsn, size = _db_env()
        pool = _DB["apool"] = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        _DB["apid"] = os.getpid()
    path, query = scope["path"], scope.get("query_string", b"").decode("latin-1")
    world = "SELECT id, randomnumber FROM world WHERE id = $1"
    async with pool.acquire() as conn:
        if path == "/db":
            r = await conn.fetchrow(world, random.randint(1, 10000))
            status, body, kind = _json({"id": r[0], "randomNumber": r[1]})
        elif path == "/queries":
            rows = [await conn.fetchrow(world, random.randint(1, 10000)) for _ in range(_count(query))]
            status, body, kind = _json([{"id": r[0], "randomNumber": r[1]} for r in rows])
        elif path == "/fortunes":
            status, body, kind = _fortunes_page([tuple(r) for r in await conn.fetch("SELECT id, message FROM fortune")])
        elif path == "/updates":
            out = []
            for _ in range(_count(query)):
                r = await conn.fetchrow(world, random.randint(1, 10000))
                n = random.randint(1, 10000)
                await conn.execute("UPDATE world SET randomnumber = $1 WHERE id = $2", n, r[0])
                out.append({"id": r[0], "randomNumber": n})
            status, body, kind = _json(out)
        elif path == "/db/wait":
            await conn.execute("SELECT pg_sleep($1)", _wait_s(query))
            status, body, kind = 200, b"waited\n", "text/plain"
        else:
            status, body, kind = 404, b"not found\n", "text/plain"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
