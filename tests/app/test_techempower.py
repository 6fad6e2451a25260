"""TechEmpower's database tests to their rules (app/techempower.py), on the embedded SQLite that
``create_app`` makes by default, driven without sockets: the verifier's ``queries`` cases, the
fortunes page to the byte (entity spelling aside), and the number of queries each request runs."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from contextlib import closing

import pytest

from app.db import FORTUNES, WORLD_ROWS, Database, DatabaseError, Query, SQLiteBackend
from appdriver import QUERIES, content


@pytest.fixture
def queries():
    QUERIES.clear()
    yield QUERIES
    QUERIES.clear()


def _rows(resp) -> list[dict]:
    assert resp.status == 200 and resp.header("content-type") == "application/json"
    return json.loads(content(resp))


def _valid(row: dict) -> bool:
    return set(row) == {"id", "randomNumber"} and 1 <= row["id"] <= WORLD_ROWS and 1 <= row["randomNumber"] <= WORLD_ROWS


def test_the_default_database_is_a_seeded_sqlite_file_in_the_data_directory(lab):
    """No option: ``/db`` answers from data_dir/lab.sqlite3, created with TechEmpower's tables."""
    row = _rows(lab("GET", "/db"))
    assert isinstance(row, dict) and _valid(row)
    with closing(sqlite3.connect(lab.data_dir / "lab.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM world").fetchone() == (WORLD_ROWS,)
        assert conn.execute("SELECT id, message FROM fortune ORDER BY id").fetchall() == list(FORTUNES)


@pytest.mark.parametrize("raw, count", [(None, 1), ("", 1), ("0", 1), ("foo", 1), ("1", 1), ("2", 2),
                                        ("20", 20), ("500", 500), ("501", 500), ("-5", 1)])
def test_queries_clamps_as_the_verifier_asks(lab, queries, raw, count):
    """TechEmpower's verifier cases: missing, empty, 0 and ``foo`` give 1 row; 501 gives 500; one
    query per row."""
    target = "/queries" if raw is None else f"/queries?queries={raw}"
    rows = _rows(lab("GET", target))
    assert isinstance(rows, list) and len(rows) == count and all(_valid(r) for r in rows)
    assert len(queries) == count and all(q.sql.startswith("SELECT id, randomnumber FROM world") for q in queries)


def test_fortunes_page_is_exact(lab, queries):
    """Every fortune plus the one added at request time, sorted by message, escaped, in UTF-8
    ``text/html``: the page equals the one built here with html.escape (entities spelled
    either way), from one query."""
    resp = lab("GET", "/fortunes")
    assert resp.status == 200 and resp.header("content-type") == "text/html; charset=utf-8"
    page = content(resp).decode("utf-8")
    fortunes = sorted([*FORTUNES, (0, "Additional fortune added at request time.")], key=lambda r: r[1])
    expected = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                "<tr><th>id</th><th>message</th></tr>"
                + "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in fortunes)
                + "</table></body></html>")
    assert page.replace("&#34;", "&quot;").replace("&#39;", "&#x27;") == expected
    assert "<script>" not in page and "フレームワークのベンチマーク" in page
    assert len(queries) == 1


def test_updates_writes_what_it_answers(lab, queries):
    """``/updates?queries=5``: five rows, each read and written (10 queries); the database holds
    the numbers the answer gives (the last one where an id was drawn twice)."""
    rows = _rows(lab("GET", "/updates?queries=5"))
    assert len(rows) == 5 and all(_valid(r) for r in rows)
    assert [q.fetch for q in queries] == ["one", "none"] * 5
    last = {r["id"]: r["randomNumber"] for r in rows}
    with closing(sqlite3.connect(lab.data_dir / "lab.sqlite3")) as conn:
        for world_id, number in last.items():
            assert conn.execute("SELECT randomnumber FROM world WHERE id = ?", (world_id,)).fetchone() == (number,)


def test_a_failing_database_answers_503_with_the_reason(lab):
    """A database that fails answers 503 with why, never a traceback; the app keeps serving."""
    class Down:
        def run(self, query):
            raise DatabaseError("connection refused", 503)

    from app import create_app
    from appdriver import make_request, run

    app = create_app(str(lab.www), str(lab.data_dir), db=Database(Down(), "postgresql"))
    resp = run(app.handle(make_request("GET", "/db")))
    assert resp.status == 503 and b"connection refused" in content(resp)
    assert run(app.handle(make_request("GET", "/plaintext"))).status == 200


def test_seeding_never_touches_tables_that_exist(tmp_path):
    """A database whose tables exist is used as it is: no row added, none changed."""
    path = tmp_path / "own.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer)")
        conn.execute("INSERT INTO world VALUES (1, 42)")
        conn.execute("CREATE TABLE fortune (id integer PRIMARY KEY, message varchar(2048))")
    backend = SQLiteBackend(str(path))
    assert backend.run(Query(sql="SELECT count(*) FROM world")) == (1,)
    assert backend.run(Query(sql="SELECT randomnumber FROM world WHERE id = %s", params=(1,))) == (42,)
    assert re.fullmatch(r"\d+", str(backend.run(Query(sql="SELECT count(*) FROM fortune"))[0]))
    backend.close()
