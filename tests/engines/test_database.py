"""TechEmpower's database routes over real sockets on every engine, under each Python of the
``server_python`` axis, on the embedded SQLite the server makes in its data directory with no
option (app/db.py): ``/db``, ``/queries``, ``/fortunes`` and ``/updates`` answered to the rules, and
concurrent ``/updates`` on one SQLite file all answered (writers wait for its lock, never fail)."""

from __future__ import annotations

import concurrent.futures

import httpx


def test_every_engine_serves_the_database_routes_on_sqlite_by_default(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        one = c.get("/db")
        assert one.status_code == 200 and one.headers["content-type"] == "application/json"
        assert set(one.json()) == {"id", "randomNumber"}
        rows = c.get("/queries", params={"queries": "501"}).json()
        assert len(rows) == 500 and all(1 <= r["id"] <= 10_000 for r in rows)
        assert len(c.get("/queries?queries=foo").json()) == 1
        page = c.get("/fortunes")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "Additional fortune added at request time." in page.text and "&lt;script&gt;" in page.text
        updated = c.get("/updates?queries=3").json()
        assert len(updated) == 3


def test_concurrent_updates_on_one_sqlite_file_are_all_answered(server):
    """20 clients' ``/updates?queries=10`` at once: every one 200 (SQLite's writers take turns)."""
    def update(_):
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return c.get("/updates?queries=10").status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        assert list(pool.map(update, range(20))) == [200] * 20
