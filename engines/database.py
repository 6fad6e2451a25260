"""How each engine waits for a real database: one driver, psycopg 3, and four ways of waiting.

A handler awaits ``app.db.fetch_one(sql, params)``; the :class:`app.db.Query` effect reaches the
engine (engines/lifecycle.py ``on_query``), which waits its own way:

    threadpool, processpool  a blocking ``psycopg.Connection`` from a pool per process
                             (``psycopg_pool.ConnectionPool``, :class:`BlockingPool`): the query
                             holds the worker thread (or the whole process) while PostgreSQL works,
                             as a sleep does
    asyncio                  an ``AsyncConnectionPool`` per event loop (:class:`AsyncPools`): the
                             handler's task waits, the loop serves the others
    selectors                libpq in non-blocking mode through psycopg's public low-level API
                             (``Connection.pgconn``: ``socket``, ``send_query_params``, ``flush``,
                             ``consume_input``, ``is_busy``, ``get_result``), each connection's
                             socket registered in the loop's own selector (:class:`Links`): the loop
                             never blocks on a query (connecting is the exception: a new connection
                             is opened with a blocking connect, bounded by ``connect_timeout``)

The pool is per copy (``--db-pool N`` connections in each process, thread worker or loop;
default :func:`default_pool`), so a deployment holds copies x N connections against the server's
``max_connections``. What a request sees when the pool is empty: it waits up to
``--db-pool-timeout`` (:data:`POOL_TIMEOUT_S`) for a connection, then 503 with ``Retry-After`` ("the pool is exhausted"),
never a hang. A query past PostgreSQL's ``statement_timeout`` is 504; a database that went away
(a restart) fails the queries in flight with 503, and the pool reconnects for the next ones.

SQLite (the default, ``--db`` unset or ``sqlite:///PATH``) is answered inline by every engine
(app/db.py).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from typing import Any, Callable

from app.db import DEFAULT_SQLITE, Database, DatabaseError, Query, SQLiteBackend, seed

__all__ = ["open_database", "database_of", "check_postgres", "default_pool", "BlockingPool", "AsyncPools", "Links",
           "POOL_TIMEOUT_S", "CONNECT_TIMEOUT_S"]

log = logging.getLogger("lab.database")

#: how long a request waits for a free connection of its copy's pool before 503 (s; --db-pool-timeout)
POOL_TIMEOUT_S = 5.0
#: libpq's connect_timeout for every new connection (s)
CONNECT_TIMEOUT_S = 3
#: the pool per copy of the loops when --db-pool is not given (asyncpg's default pool size)
LOOP_POOL = 10


def default_pool(engine: str, threads: int | None) -> int:
    """Connections per copy when ``--db-pool`` is not given: threadpool one per thread (its
    ``--threads``, default 32), processpool one (a process serves one request at a time), the loops
    :data:`LOOP_POOL`."""
    if engine == "threadpool":
        return threads or 32
    if engine == "processpool":
        return 1
    return LOOP_POOL


def is_postgres(url: str | None) -> bool:
    """Whether ``--db`` names a PostgreSQL server (``postgresql://`` or ``postgres://``)."""
    return bool(url) and url.split("://", 1)[0] in ("postgresql", "postgres")


def _error(exc: BaseException) -> DatabaseError:
    """A psycopg error as the HTTP answer it deserves: 504 for a statement past its timeout
    (SQLSTATE 57014), 503 for the rest (unreachable, restarted, refused, pool exhausted)."""
    try:
        import psycopg
        from psycopg import errors
    except ImportError as why:  # the driver itself cannot load here: every query fails the same way
        return DatabaseError(f"postgresql: psycopg cannot load here: {' '.join(str(why).split())}", 503)
    if isinstance(exc, errors.QueryCanceled):
        return DatabaseError(f"postgresql: statement timeout: {str(exc).strip()}", 504)
    if isinstance(exc, psycopg.Error):
        return DatabaseError(f"postgresql: {str(exc).strip() or type(exc).__name__}", 503)
    return DatabaseError(f"postgresql: {exc}", 503)


def _result(cur: Any, fetch: str) -> Any:
    if fetch == "one":
        return cur.fetchone()
    if fetch == "all":
        return cur.fetchall()
    return cur.rowcount


class BlockingPool:
    """A ``psycopg_pool.ConnectionPool`` of ``size`` autocommit connections, made in the process
    that first queries (so each forked worker opens its own). :meth:`run` blocks the calling thread.

    Raises:
        DatabaseError: (from :meth:`run`) see :func:`_error`; 503 when no connection is free within
            :data:`POOL_TIMEOUT_S`.
    """

    def __init__(self, dsn: str, size: int, timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout = timeout
        self._pool: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def pool(self) -> Any:
        """This process's pool, opened on first use."""
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    from psycopg_pool import ConnectionPool

                    self._pool = ConnectionPool(self.dsn, min_size=self.size, max_size=self.size,
                                                timeout=self.timeout, open=True, name="lab",
                                                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})
                    self._pid = os.getpid()
        return self._pool

    def run(self, query: Query) -> Any:
        """Run ``query`` on a connection of the pool (blocking this thread)."""
        from psycopg_pool import PoolTimeout

        try:
            with self.pool().connection() as conn:
                cur = conn.execute(query.sql, query.params)
                return _result(cur, query.fetch)
        except PoolTimeout:
            raise DatabaseError(f"postgresql: the pool is exhausted: all {self.size} connections of this copy "
                                f"stayed busy for {self.timeout:g} s", 503) from None
        except Exception as exc:  # noqa: BLE001 - psycopg's errors become 503/504
            raise _error(exc) from None

    def close(self) -> None:
        """Close this process's pool."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None


def check_postgres(dsn: str) -> str | None:
    """Connect once and create and seed the tables where they are missing (app/db.py ``seed``).
    Returns None, or why it failed (one line, for ``start_server``'s exit 2)."""
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            with conn.transaction():
                seed(conn, "%s")
    except ImportError as exc:
        return f"psycopg is not installed ({exc}): pip install -r requirements.txt"
    except Exception as exc:  # noqa: BLE001 - the reason, no traceback
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def open_database(url: str | None, data_dir: str, pool: int, pool_timeout: float = POOL_TIMEOUT_S) -> Database:
    """The app's :class:`app.db.Database` for ``--db``: SQLite in ``data_dir`` (unset), SQLite at
    PATH (``sqlite:///PATH``), or PostgreSQL (``postgresql://...``: ``pool`` connections per copy,
    a request waiting at most ``pool_timeout`` s for one; the database object carries ``dsn``,
    ``pool_size`` and ``pool_timeout`` for the engines' own drivers)."""
    if is_postgres(url):
        db = Database(BlockingPool(url, pool, pool_timeout), "postgresql")
        db.dsn, db.pool_size, db.pool_timeout = url, pool, pool_timeout
        return db
    path = os.path.join(data_dir, DEFAULT_SQLITE)
    if url and url.startswith("sqlite:///"):
        path = url[len("sqlite:///") - 1:] if url.startswith("sqlite:////") else url[len("sqlite:///"):]
    return Database(SQLiteBackend(path), "sqlite")


def database_of(config: Any) -> Database:
    """The app's database for a :class:`engines.config.ServerConfig` (``--db``, ``--db-pool``,
    ``--db-pool-timeout``): one per copy (each thread or interpreter worker makes its own)."""
    return open_database(config.db, config.data_dir, config.db_pool or default_pool(config.engine, config.threads),
                         config.db_pool_timeout)


# -- asyncio ----------------------------------------------------------------------------------------

class AsyncPools:
    """One ``psycopg_pool.AsyncConnectionPool`` per :class:`app.db.Database` for one event loop,
    opened on first use. :meth:`run` is a coroutine of that loop."""

    def __init__(self) -> None:
        self._pools: dict[int, Any] = {}

    async def run(self, query: Query) -> Any:
        """Run ``query``; the await yields to the loop while PostgreSQL works.

        Raises:
            DatabaseError: as :meth:`BlockingPool.run`.
        """
        from psycopg_pool import AsyncConnectionPool, PoolTimeout

        db = query.db
        pool = self._pools.get(id(db))
        try:
            if pool is None:
                pool = self._pools[id(db)] = AsyncConnectionPool(
                    db.dsn, min_size=db.pool_size, max_size=db.pool_size, timeout=db.pool_timeout, open=False,
                    name="lab", kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})
                await pool.open()
            async with pool.connection() as conn:
                cur = await conn.execute(query.sql, query.params)
                if query.fetch == "one":
                    return await cur.fetchone()
                if query.fetch == "all":
                    return await cur.fetchall()
                return cur.rowcount
        except PoolTimeout:
            raise DatabaseError(f"postgresql: the pool is exhausted: all {db.pool_size} connections of this "
                                f"loop stayed busy for {db.pool_timeout:g} s", 503) from None
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from None

    async def close(self) -> None:
        """Close every pool of this loop."""
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()


# -- selectors: libpq in non-blocking mode ---------------------------------------------------------

_PLACEHOLDER = re.compile(r"%s")
#: PostgreSQL type oids read back as ints (int2, int4, int8, oid) and as bools; the rest are text
_INTS = {20, 21, 23, 26}
_BOOL = 16


def numbered(sql: str) -> bytes:
    """psycopg's ``%s`` placeholders as libpq's ``$1, $2, ...``, encoded."""
    count = iter(range(1, 1 << 16))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql).encode()


def _param(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    return str(value).encode()


def _rows(res: Any) -> list[tuple]:
    """The rows of a TUPLES_OK result, text format, ints and bools converted."""
    kinds = [res.ftype(c) for c in range(res.nfields)]
    out = []
    for r in range(res.ntuples):
        row = []
        for c, kind in enumerate(kinds):
            v = res.get_value(r, c)
            if v is None:
                row.append(None)
            elif kind in _INTS:
                row.append(int(v))
            elif kind == _BOOL:
                row.append(v == b"t")
            else:
                row.append(v.decode())
        out.append(tuple(row))
    return out


class Link:
    """One PostgreSQL connection of the selectors loop, in libpq's non-blocking mode, and the query
    it is running (``None`` when idle). The loop's selector holds its socket while busy."""

    __slots__ = ("conn", "pgconn", "fd", "job", "results", "registered")

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.Connection.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        self.pgconn = self.conn.pgconn
        self.pgconn.nonblocking = 1
        self.fd = self.pgconn.socket
        self.job: tuple | None = None  # (query, done callback)
        self.results: list = []
        self.registered = 0

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - already broken
            pass


class Links:
    """The selectors engine's PostgreSQL connections, per :class:`app.db.Database`: at most its
    ``pool_size``, opened on demand; queries beyond them wait in order, up to its
    ``pool_timeout`` (then 503). ``register(fd, mask, link)`` / ``unregister(fd)`` are the
    loop's selector's; the loop calls :meth:`ready` when a link's socket is ready and :meth:`tick`
    about once a second (the waiting queries' deadlines)."""

    READ, WRITE = 1, 2

    def __init__(self, register: Callable[[int, int, Any], None], modify: Callable[[int, int, Any], None],
                 unregister: Callable[[int], None]) -> None:
        self._register, self._modify, self._unregister = register, modify, unregister
        self.idle: dict[int, list[Link]] = {}
        self.count: dict[int, int] = {}
        self.waiting: deque = deque()  # (deadline, query, done)
        self._sql: dict[str, bytes] = {}

    def submit(self, query: Query, done: Callable[[Any, BaseException | None], None]) -> None:
        """Run ``query``; ``done(result, error)`` is called from the loop when it completes (error: a
        :class:`app.db.DatabaseError`)."""
        db = query.db
        key = id(db)
        idle = self.idle.setdefault(key, [])
        link = idle.pop() if idle else None
        if link is None:
            if self.count.get(key, 0) >= db.pool_size:
                self.waiting.append((time.monotonic() + db.pool_timeout, query, done))
                return
            try:
                link = Link(db.dsn)
            except Exception as exc:  # noqa: BLE001 - unreachable: this query fails, the next tries again
                done(None, _error(exc))
                return
            self.count[key] = self.count.get(key, 0) + 1
        self._start(link, query, done)

    def _start(self, link: Link, query: Query, done: Callable) -> None:
        sql = self._sql.get(query.sql)
        if sql is None:
            sql = self._sql[query.sql] = numbered(query.sql)
        link.job = (query, done)
        link.results = []
        try:
            link.pgconn.send_query_params(sql, [_param(p) for p in query.params])
            pending = link.pgconn.flush()
        except Exception as exc:  # noqa: BLE001 - the connection is gone
            self._fail(link, _error(exc))
            return
        self._watch(link, self.READ | (self.WRITE if pending else 0))

    def _watch(self, link: Link, mask: int) -> None:
        if link.registered == mask:
            return
        if link.registered:
            self._modify(link.fd, mask, link)
        else:
            self._register(link.fd, mask, link)
        link.registered = mask

    def _unwatch(self, link: Link) -> None:
        if link.registered:
            try:
                self._unregister(link.fd)
            except (KeyError, ValueError, OSError):
                pass
            link.registered = 0

    def ready(self, link: Link, mask: int) -> None:
        """``link``'s socket is ready: send what is left, read what came, finish its query."""
        pg = link.pgconn
        try:
            if mask & self.WRITE:
                if pg.flush() == 0:
                    self._watch(link, self.READ)
            if mask & self.READ:
                pg.consume_input()
            while link.job is not None and not pg.is_busy():
                res = pg.get_result()
                if res is None:
                    self._finish(link)
                    return
                link.results.append(res)
        except Exception as exc:  # noqa: BLE001 - the server went away mid-query
            self._fail(link, _error(exc))

    def _finish(self, link: Link) -> None:
        from psycopg import pq

        query, done = link.job
        link.job = None
        res = link.results[0] if link.results else None
        link.results = []
        self._unwatch(link)
        self._release(link, query.db)
        if res is None:
            done(None, DatabaseError("postgresql: no result", 503))
        elif res.status == pq.ExecStatus.TUPLES_OK:
            rows = _rows(res)
            done(rows[0] if query.fetch == "one" and rows else None if query.fetch == "one" else
                 rows if query.fetch == "all" else len(rows), None)
        elif res.status == pq.ExecStatus.COMMAND_OK:
            done(int(res.command_tuples or 0) if query.fetch == "none" else ([] if query.fetch == "all" else None),
                 None)
        else:
            state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
            message = (res.error_message or b"").decode(errors="replace").strip()
            done(None, DatabaseError(f"postgresql: {'statement timeout: ' if state == '57014' else ''}{message}",
                                     504 if state == "57014" else 503))

    def _release(self, link: Link, db: Any) -> None:
        """Give ``link`` to the first waiting query of its database, or back to the idle list."""
        for i, (deadline, query, done) in enumerate(self.waiting):
            if query.db is db:
                del self.waiting[i]
                self._start(link, query, done)
                return
        self.idle.setdefault(id(db), []).append(link)

    def _fail(self, link: Link, error: DatabaseError) -> None:
        """The connection broke: fail its query, drop it (the next query opens a new one)."""
        query, done = link.job if link.job else (None, None)
        link.job = None
        self._unwatch(link)
        link.close()
        if query is not None:
            key = id(query.db)
            self.count[key] = max(0, self.count.get(key, 1) - 1)
            done(None, error)
            # a query waiting for a connection of the same database gets a new one (or fails fast)
            for i, (deadline, waiting, wdone) in enumerate(self.waiting):
                if waiting.db is query.db:
                    del self.waiting[i]
                    self.submit(waiting, wdone)
                    break

    def tick(self, now: float) -> None:
        """Fail the queries that waited for a connection past their deadline (503)."""
        while self.waiting and self.waiting[0][0] <= now:
            _, query, done = self.waiting.popleft()
            done(None, DatabaseError(f"postgresql: the pool is exhausted: all {query.db.pool_size} connections "
                                     f"of this loop stayed busy for {query.db.pool_timeout:g} s", 503))

    def close(self) -> None:
        """Close every connection (the engine stops)."""
        for links in self.idle.values():
            for link in links:
                link.close()
        self.idle.clear()
