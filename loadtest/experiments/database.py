"""``db``: what a real database changes (``python -m loadtest experiment db``; docs/database.md).

Every model and hybrid, and the peers as their users run them (gunicorn gthread with a
psycopg-pool per worker, uvicorn and granian with an asyncpg pool per worker: 4 each, as granian's
TechEmpower entry), against one real PostgreSQL the harness starts for each round
(loadtest/harness/postgres.py: ``max_connections`` :data:`MAX_CONNECTIONS`, ``synchronous_commit=off``
as TechEmpower ran it). TechEmpower's routes, each wrk -c :data:`CONNECTIONS` for the window:
``/db``, ``/queries?queries=N`` for N in :data:`QUERIES`, ``/fortunes``, ``/updates?queries=5``.
Each row carries the server's CPU per request and, in its note, **the database's own CPU** per
request (PostgreSQL's processes), and how many answers were not 2xx.

The pool axis (workload ``db-wait``): ``/db/wait?ms=20`` (a ``pg_sleep`` that holds a connection)
at :data:`CONNECTIONS` in flight, for selectors, asyncio and threadpool at W copies x P connections
per copy (``--db-pool P``) against ``max_connections`` :data:`AXIS_MAX_CONNECTIONS`: Little's law
says X = min(N, W x P) / 0.02 s while W x P fits; past it the server's own pool cannot open its
connections, and the row shows what a user then sees (503s, counted in the note). Rows are
measurements, not laws: ``held`` is empty, except the axis rows that fit, judged against Little's
law within 25 % (the database, not the server, may be the bottleneck).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from loadtest.experiments.base import (Config, Deployment, _row, _wrk, deployment_spec, deployments, server_env,
                                       warm_up)
from loadtest.harness import noise
from loadtest.harness.generators import Result
from loadtest.harness.postgres import TemporaryPostgres
from loadtest.harness.servers import RunningServer, running

__all__ = ["run_db", "QUERIES", "CONNECTIONS", "MAX_CONNECTIONS", "AXIS", "AXIS_MAX_CONNECTIONS", "PEER_POOL"]

#: /queries?queries=N levels (TechEmpower's run 1, 5, 10, 15, 20)
QUERIES = (1, 5, 10, 20)
#: wrk's connections for every row
CONNECTIONS = 64
#: PostgreSQL's max_connections for the routes (every pool fits)
MAX_CONNECTIONS = 300
#: the peers' pool per worker process (granian's TechEmpower entry: 4)
PEER_POOL = 4
#: the pool axis: (model, copies W, connections per copy P)
AXIS = (("selectors", 1, 4), ("selectors", 2, 4), ("selectors", 2, 16), ("asyncio", 2, 4), ("asyncio", 2, 16),
        ("threadpool", 2, 4), ("threadpool", 2, 16))
#: PostgreSQL's max_connections on the pool axis (2 x 16 = 32 copies' connections do not fit)
AXIS_MAX_CONNECTIONS = 20
#: the pool axis's wait in the database (ms)
AXIS_WAIT_MS = 20


def _paths(quick: bool) -> list[tuple[str, str]]:
    """``[(workload, path)]`` of the routes."""
    out = [("db", "/db")]
    out += [(f"queries={n}", f"/queries?queries={n}") for n in ((1, 20) if quick else QUERIES)]
    out += [("fortunes", "/fortunes"), ("updates=5", "/updates?queries=5")]
    return out


def _measured(server: RunningServer, pg: TemporaryPostgres, fn: Callable[[], Result]) -> tuple[Result, float, float]:
    """``fn()`` with the server tree's and PostgreSQL's CPU seconds in the window; noise is what is
    neither's (a noisy window is measured again, as every experiment does)."""
    for attempt in range(noise.RERUNS + 1):
        window = noise.Window()
        before, db_before = server.cpu_seconds(), pg.cpu_seconds()
        result = fn()
        cpu_s, db_s = server.cpu_seconds() - before, pg.cpu_seconds() - db_before
        reading = window.close(cpu_s + db_s, attempt)
        if not reading.noisy:
            break
    result.detail["noise"] = reading
    return result, cpu_s, db_s


def _db_spec(dep: Deployment, dsn: str, pool: int | None = None) -> Any:
    """How to start ``dep`` against ``dsn``: the lab's engines with ``--db`` (and ``--db-pool``);
    a peer serving loadtest/harness/peers.py's database callables."""
    if dep.kind == "engine":
        extra = ("--db", dsn) + (("--db-pool", str(pool)) if pool else ())
        return deployment_spec(dep, extra)
    return deployment_spec(dep, asgi="loadtest.harness.peers:db_asgi", wsgi="loadtest.harness.peers:db_wsgi")


def run_db(cfg: Config) -> list[dict]:
    """``db``: TechEmpower's routes on every deployment, then the pool axis (module docstring)."""
    rows: list[dict] = []
    env = dict(server_env(), LAB_DB_POOL=str(PEER_POOL))
    with TemporaryPostgres(MAX_CONNECTIONS) as pg:
        from engines.database import check_postgres

        why = check_postgres(pg.dsn)  # tables made and seeded once, before any server
        if why:
            raise OSError(f"PostgreSQL: {why}")
        env["LAB_DB_DSN"] = pg.dsn
        for dep in deployments(cfg):
            with running(_db_spec(dep, pg.dsn), None, cfg.log_dir, env, 60) as server:
                warm_up(server, "/db", CONNECTIONS)
                for workload, path in _paths(cfg.quick):
                    result, cpu_s, db_s = _measured(server, pg, lambda: _wrk(server.port, path, CONNECTIONS,
                                                                             cfg.duration, None))
                    n = result.requests or 0
                    note = (f"database CPU {db_s / n * 1e6:,.0f} µs/req ({db_s / cfg.duration:.2f} cores)"
                            if n else "")
                    rows.append(_row(cfg, "db", dep.name, workload, CONNECTIONS, result, cpu_s,
                                     int(os.cpu_count() or 1), "a measurement: the server against one real "
                                     "PostgreSQL", "", None, note, workers=dep.workers))
    rows += _pool_axis(cfg)
    return rows


def _pool_axis(cfg: Config) -> list[dict]:
    """``/db/wait`` at W copies x P connections against ``max_connections`` (module docstring)."""
    rows = []
    axis = AXIS[:3] if cfg.quick else AXIS
    with TemporaryPostgres(AXIS_MAX_CONNECTIONS) as pg:
        from engines.database import check_postgres

        why = check_postgres(pg.dsn)
        if why:
            raise OSError(f"PostgreSQL: {why}")
        for model, copies, pool in cfg.order(list(axis), "db pool axis"):
            dep = Deployment(f"{model} x{copies}", model, copies) if copies > 1 else Deployment(model, model, 1)
            spec = _db_spec(dep, pg.dsn, pool)
            with running(spec, None, cfg.log_dir, server_env(), 60) as server:
                path = f"/db/wait?ms={AXIS_WAIT_MS}"
                result, cpu_s, db_s = _measured(server, pg, lambda: _wrk(server.port, path, CONNECTIONS,
                                                                         cfg.duration, None))
            held_connections = copies * pool
            fits = held_connections <= AXIS_MAX_CONNECTIONS - 3  # PostgreSQL keeps 3 for superusers
            law = min(CONNECTIONS, held_connections) / (AXIS_WAIT_MS / 1000)
            held = (abs(result.rps - law) <= 0.25 * law) if fits and result.requests else None
            note = (f"{copies} copies x {pool} connections = {held_connections} against max_connections "
                    f"{AXIS_MAX_CONNECTIONS}; {'fits' if fits else 'does not fit: the copies cannot all connect'}; "
                    f"Little's law {law:,.0f} req/s; {result.rps / law:.2f}x" if law else "")
            rows.append(_row(cfg, "db", f"{dep.name} (pool {pool})", "db-wait", CONNECTIONS, result, cpu_s,
                             int(os.cpu_count() or 1), "X = min(N, W x P) / wait while W x P fits max_connections",
                             f"{law:,.0f} req/s" if fits else "", held, note, workers=copies))
    return rows
