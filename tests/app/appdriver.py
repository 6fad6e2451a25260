"""Helpers for tests/app: drive the app's coroutines without sockets or event loops.

``run(coro)`` steps a handler coroutine with ``coro.send(None)`` the way the engines do; a
:class:`app.effects.Sleep` it yields is recorded in ``SLEEPS`` and skipped (no real waiting).
"""

from __future__ import annotations

import os

from app import Request, Response
from app.effects import Sleep
from app.messages import FileBody

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(ROOT, "www")

#: Seconds of every Sleep effect skipped by run(), in order (cleared by the ``sleeps`` fixture).
SLEEPS: list[float] = []


def run(coro):
    """Run ``coro`` to completion, skipping its Sleep effects; return its value or raise."""
    try:
        while True:
            effect = coro.send(None)
            if isinstance(effect, Sleep):
                SLEEPS.append(effect.seconds)
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
