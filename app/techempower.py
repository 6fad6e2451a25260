"""TechEmpower's database tests, to their rules (FrameworkBenchmarks wiki, "Project Information ->
Framework Tests Overview", tests 2, 3, 4 and 5), on ``app.db`` (app/db.py):

``GET /db``                 one random World row: ``{"id": 3217, "randomNumber": 2149}``
``GET /queries?queries=N``  N rows, one query each, as a JSON array; N an integer clamped to 1..500;
                            missing, empty, 0 or not an integer (``foo``) -> 1; 501 -> 500
``GET /fortunes``           every Fortune row plus ``Additional fortune added at request time.`` (id
                            0), sorted by message in the app, rendered by an escaping template
                            (Jinja2, autoescape) as UTF-8 ``text/html``
``GET /updates?queries=N``  N random rows, each read, given a new random number 1..10,000 and
                            written back (one UPDATE per row); the updated rows as a JSON array
``GET /db/wait?ms=200``     the lab's own: ``SELECT pg_sleep(ms / 1000)``, a wait that holds a
                            database connection (PostgreSQL only; 501 on SQLite)

Ids and random numbers are drawn uniformly from 1..10,000 (``random``, per request). A query that
fails answers 503 (the database unavailable or busy) or 504 (a statement past its timeout), with
the reason, never a traceback (:class:`app.db.DatabaseError`).
"""

from __future__ import annotations

import random
import re

import jinja2

from .db import WORLD_ROWS, Database, DatabaseError
from .messages import HTTPError, Request, Response

__all__ = ["routes", "query_count", "FORTUNES_TEMPLATE", "ADDITIONAL_FORTUNE"]

#: the fortune every request adds before sorting (TechEmpower's rule)
ADDITIONAL_FORTUNE = "Additional fortune added at request time."
#: the page TechEmpower's verifier expects (whitespace between tags aside)
FORTUNES_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>{% endfor %}"
    "</table></body></html>")

_WORLD = "SELECT id, randomnumber FROM world WHERE id = %s"
_UPDATE = "UPDATE world SET randomnumber = %s WHERE id = %s"
_FORTUNES = "SELECT id, message FROM fortune"
_INTEGER = re.compile(r"[+-]?\d{1,18}")


def query_count(request: Request) -> int:
    """``queries`` as TechEmpower's rules read it: an integer clamped to 1..500, else 1."""
    raw = (request.query.get("queries") or "").strip()
    if not _INTEGER.fullmatch(raw):
        return 1
    return max(1, min(500, int(raw)))


def _failed(exc: DatabaseError) -> HTTPError:
    """The answer to a failed query: its status (503 with Retry-After: try again; 504) and why."""
    headers = [("retry-after", "1")] if exc.status == 503 else []
    return HTTPError(exc.status, f"database: {exc}", headers)


def routes(db: Database) -> list[tuple[str, object]]:
    """``[(path, handler)]`` of the four tests on ``db``."""
    randint = random.randint

    async def single(request: Request) -> Response:
        """``GET /db``: one random World row."""
        try:
            row = await db.fetch_one(_WORLD, (randint(1, WORLD_ROWS),))
        except DatabaseError as exc:
            raise _failed(exc) from None
        return Response.json({"id": row[0], "randomNumber": row[1]})

    async def queries(request: Request) -> Response:
        """``GET /queries?queries=N``: N random World rows, one query each."""
        out = []
        try:
            for _ in range(query_count(request)):
                row = await db.fetch_one(_WORLD, (randint(1, WORLD_ROWS),))
                out.append({"id": row[0], "randomNumber": row[1]})
        except DatabaseError as exc:
            raise _failed(exc) from None
        return Response.json(out)

    async def fortunes(request: Request) -> Response:
        """``GET /fortunes``: the fortunes page."""
        try:
            rows = list(await db.fetch_all(_FORTUNES))
        except DatabaseError as exc:
            raise _failed(exc) from None
        rows.append((0, ADDITIONAL_FORTUNE))
        rows.sort(key=lambda r: r[1])
        html = FORTUNES_TEMPLATE.render(fortunes=rows)
        return Response.text(html, content_type="text/html; charset=utf-8")

    async def updates(request: Request) -> Response:
        """``GET /updates?queries=N``: N rows read, changed and written back."""
        out = []
        try:
            for _ in range(query_count(request)):
                row = await db.fetch_one(_WORLD, (randint(1, WORLD_ROWS),))
                number = randint(1, WORLD_ROWS)
                await db.execute(_UPDATE, (number, row[0]))
                out.append({"id": row[0], "randomNumber": number})
        except DatabaseError as exc:
            raise _failed(exc) from None
        return Response.json(out)

    async def wait(request: Request) -> Response:
        """``GET /db/wait?ms=200``: the lab's own, not TechEmpower's: one ``SELECT pg_sleep`` of
        ``ms`` (0..60,000) on PostgreSQL, a wait that holds a connection (501 on SQLite)."""
        if db.name != "postgresql":
            raise HTTPError(501, "/db/wait needs PostgreSQL (--db postgresql://...)")
        raw = (request.query.get("ms") or "200").strip()
        if not _INTEGER.fullmatch(raw):
            raise HTTPError(400, "ms must be an integer")
        ms = max(0, min(60_000, int(raw)))
        try:
            await db.fetch_one("SELECT pg_sleep(%s)", (ms / 1000,))
        except DatabaseError as exc:
            raise _failed(exc) from None
        return Response.text(f"waited {ms} ms in PostgreSQL\n")

    return [("/db", single), ("/queries", queries), ("/fortunes", fortunes), ("/updates", updates),
            ("/db/wait", wait)]
