"""A query is an effect: handlers ``await app.db.fetch_one(sql, params)`` (``fetch_all``, ``execute``)
without importing a driver, and whoever drives the handler runs the query its own way.

The handler side (:class:`Database`) yields a :class:`Query` effect up to the engine, as ``app.wait``
yields :class:`app.effects.Sleep`. The engine answers it by sending the result back into the
coroutine (or throwing a :class:`DatabaseError` into it): ``engines/lifecycle.py`` ``on_query``. The
embedded default, SQLite (:class:`SQLiteBackend`), is answered inline by every engine: a query on a
local file waits for no network, so there is nothing for a loop to overlap (a few µs to a few hundred
µs; ``/updates`` takes SQLite's write lock, held one writer at a time).

SQL is written once, with psycopg's ``%s`` placeholders (what the PostgreSQL driver takes); the
SQLite backend rewrites them to ``?``. Rows are tuples.

The schema is TechEmpower's (FrameworkBenchmarks, ``toolset/databases/postgres/create-postgres.sql``):
``World(id, randomNumber)`` with 10,000 rows, ids 1..10,000, random numbers 1..10,000; ``Fortune(id,
message)`` with the 12 rows of its seed. :func:`seed` creates and fills the tables where they are
missing and never touches tables that exist.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, Generator

from .effects import Effect

__all__ = ["Query", "Database", "DatabaseError", "SQLiteBackend", "FORTUNES", "WORLD_ROWS", "seed",
           "DEFAULT_SQLITE"]

#: rows of World (TechEmpower: 10,000)
WORLD_ROWS = 10_000
#: TechEmpower's 12 fortunes (FrameworkBenchmarks' seed), ids 1..12, the script tag and the Japanese one included
FORTUNES = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, "<script>alert(\"This should not be displayed in a browser alert box.\");</script>"),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
)
#: the SQLite file in the server's data directory (``--data-dir``)
DEFAULT_SQLITE = "lab.sqlite3"


class DatabaseError(Exception):
    """A query failed (the database refused it, or could not be reached). ``status`` is the HTTP
    status the request should get: 503 (unavailable, busy: try again) or 504 (a timeout)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True, slots=True)
class Query(Effect):
    """One query for the driver of the handler: ``sql`` with ``%s`` placeholders, ``params`` (a tuple),
    ``fetch``: ``"one"`` (the first row, a tuple, or None), ``"all"`` (a list of tuples) or
    ``"none"`` (the number of rows changed)."""

    sql: str
    params: tuple = ()
    fetch: str = "one"
    #: the :class:`Database` that asked, whose backend runs it where the engine runs it inline
    db: Any = field(default=None, compare=False, repr=False)


class _Await:
    __slots__ = ("effect",)

    def __init__(self, effect: Query) -> None:
        self.effect = effect

    def __await__(self) -> Generator[Effect, Any, Any]:
        return (yield self.effect)


class Database:
    """What handlers await. Each method returns an awaitable that yields a :class:`Query` to the
    engine and evaluates to its result; a failed query raises :class:`DatabaseError` at the await.

    Args:
        backend: what runs queries where the engine runs them inline (:class:`SQLiteBackend`).
        name: ``"sqlite"`` or ``"postgresql"`` (in ``/_metrics`` and the logs).
    """

    def __init__(self, backend: Any, name: str = "sqlite") -> None:
        self.backend = backend
        self.name = name

    def fetch_one(self, sql: str, params: tuple = ()) -> _Await:
        """The first row of ``sql`` (a tuple), or None."""
        return _Await(Query(sql=sql, params=tuple(params), fetch="one", db=self))

    def fetch_all(self, sql: str, params: tuple = ()) -> _Await:
        """Every row of ``sql`` (a list of tuples)."""
        return _Await(Query(sql=sql, params=tuple(params), fetch="all", db=self))

    def execute(self, sql: str, params: tuple = ()) -> _Await:
        """Run ``sql``; the number of rows it changed."""
        return _Await(Query(sql=sql, params=tuple(params), fetch="none", db=self))

    def run(self, query: Query) -> Any:
        """Run ``query`` here, blocking (the inline way every engine answers an embedded database).

        Raises:
            DatabaseError: the backend failed.
        """
        return self.backend.run(query)


class SQLiteBackend:
    """SQLite in ``path``: one connection per thread and process (a connection is not shared across
    threads, nor inherited across ``fork``), in WAL mode with a 5 s busy timeout (a writer waits for
    another's lock that long, then the request gets 503). Seeds the tables on first use (``seed``).

    Raises:
        DatabaseError: (from :meth:`run`) SQLite failed (busy past the timeout, disk full, ...).
    """

    BUSY_TIMEOUT_S = 5.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._sql: dict[str, str] = {}
        self._seeded = False
        self._seed_lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []  # every connection made, closed with the backend

    def close(self) -> None:
        """Close every connection this backend opened (any thread's)."""
        opened, self._opened = self._opened, []
        for conn in opened:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __del__(self) -> None:
        # an app dropped without close (tests make many): no connection left to the collector
        self.close()

    def _seed(self, conn: sqlite3.Connection) -> None:
        """Create and fill the tables on first use (once per process; across processes and
        interpreters SQLite's write lock makes one of them the seeder)."""
        with self._seed_lock:
            if not self._seeded:
                seed(conn, "?")
                self._seeded = True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's (and process's) connection, opened on first use."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = local.conn = self._connect()
            local.pid = os.getpid()
            self._opened.append(conn)
            if not self._seeded:
                self._seed(conn)
        return conn

    def run(self, query: Query) -> Any:
        """Run ``query`` on this thread's connection (autocommit: each statement its own transaction)."""
        sql = self._sql.get(query.sql)
        if sql is None:
            sql = self._sql[query.sql] = query.sql.replace("%s", "?")
        try:
            cur = self.connection().execute(sql, query.params)
            if query.fetch == "one":
                return cur.fetchone()
            if query.fetch == "all":
                return cur.fetchall()
            return cur.rowcount
        except sqlite3.OperationalError as exc:
            raise DatabaseError(f"sqlite: {exc}", 503) from exc
        except sqlite3.Error as exc:
            raise DatabaseError(f"sqlite: {exc}", 503) from exc


def seed(conn: Any, mark: str = "%s") -> bool:
    """Create and fill ``world`` and ``fortune`` on ``conn`` (a DB-API connection in autocommit)
    where they are missing; tables that exist are never touched. ``mark``: the driver's
    placeholder. Returns True when it created them.

    Raises:
        the driver's error when the database refuses.
    """
    cur = conn.cursor()
    if mark == "?":
        cur.execute("BEGIN IMMEDIATE")  # one seeder at a time (interpreter and thread workers start together)
    done = False
    try:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='world'" if mark == "?"
                    else "SELECT 1 FROM information_schema.tables WHERE table_name = 'world'")
        if cur.fetchone() is not None:
            return False
        cur.execute("CREATE TABLE world (id integer NOT NULL PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0)")
        cur.execute("CREATE TABLE fortune (id integer NOT NULL PRIMARY KEY, message varchar(2048) NOT NULL)")
        rng = random.Random(20261207)
        cur.executemany(f"INSERT INTO world (id, randomnumber) VALUES ({mark}, {mark})",
                        [(i, rng.randint(1, WORLD_ROWS)) for i in range(1, WORLD_ROWS + 1)])
        cur.executemany(f"INSERT INTO fortune (id, message) VALUES ({mark}, {mark})", FORTUNES)
        done = True
        return True
    finally:
        if mark == "?":
            cur.execute("COMMIT" if done else "ROLLBACK")  # nothing to keep unless the tables were made
