"""Every engine against a real PostgreSQL (loadtest/harness/postgres.py: Debian's binaries, initdb in
a temporary directory, 127.0.0.1 and a free port), started once for the module: TechEmpower's four
routes to the verifier's rules (the query count from pg_stat_statements), with and without
``--workers 2``; the selectors loop holding 20 ``pg_sleep`` queries at once (seen in
pg_stat_activity, not timed); the pool exhausted (503 after ``--db-pool-timeout``, never a hang); a
statement past ``statement_timeout`` (504); PostgreSQL restarted under load (the queries in flight
503, then served again); unreachable at start (exit 2 naming the DSN).

Without PostgreSQL's binaries the module is skipped with the command that installs them; CI sets
``LAB_REQUIRE_PG=1``, which makes that a failure.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys

import httpx
import pytest

from conftest import ENGINES, ROOT, start_server
from loadtest.harness.postgres import PostgresUnavailable, TemporaryPostgres
from test_workers import poll


@pytest.fixture(scope="module")
def pg():
    try:
        server = TemporaryPostgres(max_connections=300).start()
    except PostgresUnavailable as exc:
        if os.environ.get("LAB_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required (LAB_REQUIRE_PG=1): {exc}")
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield server
    server.stop()


def _serve(started, engine, tmp_path, pg, *args):
    srv = start_server(engine, "--db", pg.dsn, *args, tmp_path=tmp_path)
    started.append(srv)
    return srv


def _world_selects(pg) -> int:
    return int(pg.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                      "WHERE query LIKE 'SELECT id, randomnumber FROM world WHERE id = %'") or 0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one", "workers2"])
def test_the_four_routes_to_techempower_rules(engine, workers, pg, tmp_path, started):
    srv = _serve(started, engine, tmp_path, pg, *workers)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        row = c.get("/db").json()
        assert set(row) == {"id", "randomNumber"} and 1 <= row["id"] <= 10_000
        for raw, count in (("", 1), ("foo", 1), ("0", 1), ("501", 500), ("20", 20)):
            before = _world_selects(pg)
            rows = c.get(f"/queries?queries={raw}").json()
            assert len(rows) == count
            assert _world_selects(pg) - before == count  # one query per row, as the verifier counts them
        page = c.get("/fortunes")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>" in page.text
        assert "&lt;script&gt;" in page.text and "フレームワークのベンチマーク" in page.text
        updated = c.get("/updates?queries=5").json()
        assert len(updated) == 5
        last = {r["id"]: r["randomNumber"] for r in updated}
        for world_id, number in last.items():
            assert int(pg.sql(f"SELECT randomnumber FROM world WHERE id = {int(world_id)}")) == number


def _pg_sleeps(pg) -> int:
    return int(pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
                      "AND state = 'active'"))


def test_the_selectors_loop_holds_20_queries_at_once(pg, tmp_path, started):
    """20 clients' ``/db/wait?ms=1500`` with ``--db-pool 20`` on one selectors loop: PostgreSQL
    sees all 20 ``pg_sleep`` running at the same moment (the loop never blocked on one), and a
    /plaintext is answered meanwhile."""
    srv = _serve(started, "selectors", tmp_path, pg, "--db-pool", "20")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(httpx.get, f"{srv.url}/db/wait?ms=1500", timeout=30) for _ in range(20)]
        poll(lambda: _pg_sleeps(pg) == 20, what="20 pg_sleep queries running at once")
        assert httpx.get(f"{srv.url}/plaintext", timeout=5).status_code == 200
        assert [f.result().status_code for f in futures] == [200] * 20


@pytest.mark.parametrize("engine", ["selectors", "asyncio", "threadpool"])
def test_an_exhausted_pool_answers_503_after_its_timeout(engine, pg, tmp_path, started):
    """``--db-pool 2`` and 3 clients waiting 3 s in the database: two are served, the third waits
    ``--db-pool-timeout 0.5`` s for a connection and gets 503 with Retry-After, saying why."""
    srv = _serve(started, engine, tmp_path, pg, "--db-pool", "2", "--db-pool-timeout", "0.5",
                 *(("--threads", "8") if engine == "threadpool" else ()))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(httpx.get, f"{srv.url}/db/wait?ms=3000", timeout=30) for _ in range(3)]
        answers = [f.result() for f in futures]
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 503], codes
    refused = next(r for r in answers if r.status_code == 503)
    assert "pool is exhausted" in refused.text and refused.headers.get("retry-after") == "1"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_statement_past_its_timeout_is_504(engine, pg, tmp_path, started):
    dsn = pg.dsn + "?options=-c%20statement_timeout%3D200"
    srv = start_server(engine, "--db", dsn, tmp_path=tmp_path)
    started.append(srv)
    r = httpx.get(f"{srv.url}/db/wait?ms=2000", timeout=30)
    assert r.status_code == 504 and "statement timeout" in r.text
    assert httpx.get(f"{srv.url}/db", timeout=30).status_code == 200


@pytest.mark.parametrize("engine", ENGINES)
def test_a_restart_under_load_fails_only_the_queries_in_flight(engine, tmp_path, started):
    """PostgreSQL restarted while 4 ``/db/wait?ms=5000`` are in flight: each gets 503 (none hangs,
    none is a 500), the server keeps serving, and once PostgreSQL is back ``/db`` is 200 again."""
    with TemporaryPostgres(max_connections=100) as own:
        srv = _serve(started, engine, tmp_path, own, *(("--workers", "2") if engine == "processpool" else ()))
        assert httpx.get(f"{srv.url}/db", timeout=30).status_code == 200
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(httpx.get, f"{srv.url}/db/wait?ms=5000", timeout=60) for _ in range(4)]
            expected = 2 if engine == "processpool" else 4  # processpool: one request per process
            poll(lambda: _pg_sleeps(own) >= expected, what="the waits running in PostgreSQL")
            own.restart()
            codes = [f.result().status_code for f in futures]
        assert set(codes) <= {200, 503} and codes.count(503) >= expected, codes
        assert httpx.get(f"{srv.url}/plaintext", timeout=5).status_code == 200
        poll(lambda: httpx.get(f"{srv.url}/db", timeout=30).status_code == 200, timeout=30,
             what="/db served again after the restart")


def test_an_unreachable_database_at_start_exits_2_naming_it(tmp_path):
    dsn = "postgresql://postgres@127.0.0.1:1/lab"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "start_server"), "--port", "0", "--db", dsn,
                          "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2
    assert dsn in out.stderr and "Traceback" not in out.stderr, out.stderr
