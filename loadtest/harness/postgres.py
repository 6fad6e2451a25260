"""A real PostgreSQL for the experiments and the tests, started and stopped here: Debian's binaries
(``postgresql``, PostgreSQL 15), ``initdb`` in a temporary directory as an unprivileged user, on
127.0.0.1 and a free port, with ``max_connections`` per experiment and ``synchronous_commit=off`` as
TechEmpower ran it, ``pg_stat_statements`` loaded (the verifier counts the queries a request runs).

    with TemporaryPostgres(max_connections=100) as pg:
        pg.dsn          # postgresql://postgres@127.0.0.1:PORT/lab
        pg.restart()    # a restart mid-run (the fault tests)
        pg.cpu_seconds()  # the server processes' CPU time so far (the database's own CPU)

Nothing here touches a PostgreSQL it did not start; ``stop`` (or leaving the ``with``) stops the
server by its own ``pg_ctl`` and removes the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from typing import Any

import psutil

__all__ = ["TemporaryPostgres", "PostgresUnavailable", "bindir", "INSTALL"]

#: how to get the binaries on Debian
INSTALL = "apt-get install postgresql"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the server would not start (the message says why)."""


def bindir() -> str:
    """The directory of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin, else
    ``pg_config --bindir``, else the directory of ``initdb`` on PATH.

    Raises:
        PostgresUnavailable: none found (install with :data:`INSTALL`).
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and os.path.exists(os.path.join(out.stdout.strip(), "initdb")):
            return out.stdout.strip()
    except OSError:
        pass
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise PostgresUnavailable(f"no PostgreSQL binaries (initdb, pg_ctl) here: {INSTALL}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """A PostgreSQL server of its own in a temporary directory (see the module docstring).

    Args:
        max_connections: the server's ``max_connections``.
        settings: more ``-c name=value`` settings (``{"statement_timeout": "1s"}``).

    Raises:
        PostgresUnavailable: (from :meth:`start`) no binaries, or initdb or the start failed.
    """

    def __init__(self, max_connections: int = 100, settings: dict[str, str] | None = None) -> None:
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self.port = 0
        self.dir = ""
        self._bin = ""
        self._user: pwd.struct_passwd | None = None

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/lab`` (trust authentication, local only)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/lab"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a PostgreSQL binary as the unprivileged owner of the data directory."""
        def demote() -> None:
            if self._user is not None:
                os.setgid(self._user.pw_gid)
                os.setuid(self._user.pw_uid)
        return subprocess.run([os.path.join(self._bin, argv[0]), *argv[1:]], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=demote if self._user is not None else None,
                              cwd=self.dir)

    def start(self) -> "TemporaryPostgres":
        """initdb, start, create the ``lab`` database with pg_stat_statements; returns self."""
        self._bin = bindir()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the package's user, else nobody
            for name in ("postgres", "nobody"):
                try:
                    self._user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
        self.dir = tempfile.mkdtemp(prefix="lab-pg-")
        os.chmod(self.dir, 0o755)
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        data = os.path.join(self.dir, "data")
        out = self._run("initdb", "-D", data, "--auth=trust", "-U", "postgres", "--encoding=UTF8",
                        "--locale=C", "--no-sync")
        if out.returncode != 0:
            self._remove()
            raise PostgresUnavailable(f"initdb failed: {out.stderr.strip()[-500:]}")
        self.port = _free_port()
        options = {"listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": self.dir,
                   "max_connections": str(self.max_connections), "synchronous_commit": "off",
                   "shared_preload_libraries": "pg_stat_statements", "fsync": "off", **self.settings}
        with open(os.path.join(data, "postgresql.auto.conf"), "a") as f:
            for name, value in options.items():
                f.write(f"{name} = '{value}'\n")
        self._pg_ctl("start")
        out = self._psql("postgres", "CREATE DATABASE lab")
        if out.returncode != 0:
            self.stop()
            raise PostgresUnavailable(f"CREATE DATABASE failed: {out.stderr.strip()[-500:]}")
        self._psql("lab", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    def _pg_ctl(self, action: str) -> None:
        data = os.path.join(self.dir, "data")
        out = self._run("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60",
                        "-m", "fast", action)
        if out.returncode != 0:
            log = ""
            try:
                with open(os.path.join(self.dir, "server.log")) as f:
                    log = f.read()[-800:]
            except OSError:
                pass
            raise PostgresUnavailable(f"pg_ctl {action} failed: {out.stderr.strip()[-300:]} {log}")

    def _psql(self, database: str, sql: str) -> subprocess.CompletedProcess:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-Atc", sql, timeout=60)

    def sql(self, statement: str) -> str:
        """Run ``statement`` with psql in the ``lab`` database; its output (unaligned, tuples only).

        Raises:
            RuntimeError: psql failed.
        """
        out = self._psql("lab", statement)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout.strip()

    def restart(self) -> None:
        """Stop (fast: connections are closed) and start again on the same port."""
        self._pg_ctl("restart")

    def pid(self) -> int | None:
        """The postmaster's pid (from its pid file), or None when it is not running."""
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def cpu_seconds(self) -> float:
        """User + system CPU (s) of the postmaster and every backend so far (the database's own CPU)."""
        pid = self.pid()
        if pid is None:
            return 0.0
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def stop(self) -> None:
        """Stop the server (if running) and remove its directory."""
        if self.dir and self.pid() is not None:
            try:
                self._pg_ctl("stop")
            except PostgresUnavailable:
                pid = self.pid()
                if pid is not None:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
        self._remove()

    def _remove(self) -> None:
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""

    def __enter__(self) -> "TemporaryPostgres":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
