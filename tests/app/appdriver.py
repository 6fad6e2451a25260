"""Helpers for tests/app: drive the app's coroutines without sockets or event loops.

``run(coro)`` steps a handler coroutine with ``coro.send(None)`` the way the engines do; a
:class:`app.effects.Sleep` it yields is recorded in ``SLEEPS`` and skipped (no real waiting).
"""

from __future__ import annotations

import os

from app import Request, Response
from app.db import DatabaseError, Query
from app.effects import Sleep
from app.messages import FileBody

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(ROOT, "www")

#: Seconds of every Sleep effect skipped by run(), in order (cleared by the ``sleeps`` fixture).
SLEEPS: list[float] = []
#: Every Query effect run() answered, in order (tests clear it themselves).
QUERIES: list = []


def run(coro):
    """Run ``coro`` to completion, skipping its Sleep effects and answering its queries inline on
    the database that asked (as the engines do for SQLite); return its value or raise."""
    reply, error = None, None
    try:
        while True:
            if error is not None:
                effect, error = coro.throw(error), None
            else:
                effect, reply = coro.send(reply), None
            if isinstance(effect, Sleep):
                SLEEPS.append(effect.seconds)
            elif isinstance(effect, Query):
                QUERIES.append(effect)
                try:
                    reply = effect.db.run(effect)
                except DatabaseError as exc:
                    error = exc
            else:
                raise AssertionError(f"unexpected effect {effect!r}")
    except StopIteration as stop:
        return stop.value


def drain(body) -> list[bytes]:
    """All chunks of a body: bytes -> [bytes]; an async iterator -> its pieces (driven by run)."""
    if isinstance(body, (bytes, bytearray)):
        return [bytes(body)]
    if isinstance(body, FileBody):
        with open(body.path, "rb") as f:
            f.seek(body.offset)
            return [f.read(body.count)]
    chunks = []
    while True:
        try:
            chunks.append(run(body.__anext__()))
        except StopAsyncIteration:
            return chunks


def content(response: Response) -> bytes:
    return b"".join(drain(response.body))


def make_request(method: str = "GET", target: str = "/", headers=None, body: bytes = b"",
                 engine: str = "test") -> Request:
    """A Request as the glue builds it; ``body`` is what ``await request.body()`` returns."""
    from app.messages import ConnectionInfo

    async def reader() -> bytes:
        return body

    hdrs = [(k.lower(), v) for k, v in (headers.items() if isinstance(headers, dict) else headers or [])]
    return Request(method=method, target=target, headers=hdrs, info=ConnectionInfo(engine=engine),
                   body_reader=reader)
