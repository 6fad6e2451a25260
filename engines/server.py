"""``./start_server``: parse options, build the app, bind listeners, run one engine — in this
process, or ``--workers`` copies of it under the supervisor (engines/supervisor.py).

Prints exactly one line when ready, e.g.::

    concurrency-lab: selectors engine listening on http://127.0.0.1:8080 (pid 1234)

(one line per listener); tests and the load harness read the port from it (``--port 0`` picks a
free one).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings

from . import ENGINES, engine_class
from .config import ServerConfig
from .database import check_postgres, database_of, is_postgres
from .listeners import open_listeners
from .supervisor import Supervisor, cpu_count

__all__ = ["parse_args", "main", "engine_class"]

def _workers(p: argparse.ArgumentParser, given: str | None, engine: str) -> int:
    """``--workers`` as a count: a whole number >= 1, or ``auto`` (the CPUs this process may
    use); unset: ``auto`` for processpool (its model is pre-forked processes), else 1.
    Anything else is a usage error (exit 2)."""
    if given is None:
        given = "auto" if engine == "processpool" else "1"
    if given == "auto":
        return cpu_count()
    try:
        n = int(given)
    except ValueError:
        p.error(f"--workers wants a whole number >= 1 or 'auto', not {given!r}")
    if n < 1:
        p.error(f"--workers wants a whole number >= 1 or 'auto', not {n}")
    return n


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    """Command-line options -> :class:`ServerConfig`. ``--help`` lists them."""
    d = ServerConfig()
    p = argparse.ArgumentParser(prog="start_server", description=(
        "Serve the concurrency lab's application over HTTP/1.1 and HTTP/2 with one engine "
        "(a concurrency model), in one process or --workers copies."))
    p.add_argument("--engine", choices=ENGINES, default=d.engine, help="concurrency model (default: %(default)s)")
    p.add_argument("--host", default=d.host, help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=d.port, help="plain HTTP port; 0 = a free port (default: %(default)s)")
    p.add_argument("--workers", default=None, metavar="N",
                   help="copies of the engine, each in its own process, or 'auto' = the CPUs this "
                        "process may use (default: auto for processpool, else 1)")
    p.add_argument("--worker-kind", choices=["process", "interpreter", "thread"], default="process",
                   help="what each of the --workers copies runs in: a forked process; (Python 3.14) a "
                        "subinterpreter of this process with its own GIL; or a thread of this process "
                        "(in parallel on a free-threaded build, taking turns under a GIL) (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="threadpool: threads per process (default 32)")
    p.add_argument("--www", default=d.www, help="static site directory (default: www/)")
    p.add_argument("--data-dir", default=d.data_dir, help="where POST /files/{name} writes (default: data/)")
    p.add_argument("--log-level", default=d.log_level, type=str.upper,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: %(default)s)")
    p.add_argument("--access-log", nargs="?", const="-", default=None, metavar="FILE",
                   help="log one line per request to FILE (appended), or to stderr without FILE")
    p.add_argument("--log-format", choices=["plain", "json"], default=d.log_format,
                   help="access log lines: plain text or one JSON object each (default: %(default)s)")
    p.add_argument("--keepalive-timeout", type=float, default=d.keepalive_timeout, help="s (default: %(default)s)")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout, help="s to receive a request head (default: %(default)s)")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout,
                   help="s a request body may take beyond 1 s per --body-min-rate bytes (default: %(default)s)")
    p.add_argument("--body-min-rate", type=float, default=d.body_min_rate,
                   help="bytes/s a request body must keep up after --body-timeout (default: %(default)s)")
    p.add_argument("--send-timeout", type=float, default=d.send_timeout, help="s a client may stall reading (default: %(default)s)")
    p.add_argument("--drain-timeout", type=float, default=d.drain_timeout, help="s to finish in-flight requests on SIGTERM (default: %(default)s)")
    p.add_argument("--max-connections", type=int, default=d.max_connections, help="(default: %(default)s)")
    p.add_argument("--max-body-size", type=int, default=d.max_body_size, help="bytes, else 413 (default: %(default)s)")
    p.add_argument("--max-target-length", type=int, default=d.max_target_length, help="bytes, else 414 (default: %(default)s)")
    p.add_argument("--max-header-bytes", type=int, default=d.max_header_bytes, help="bytes, else 431 (default: %(default)s)")
    p.add_argument("--queue-size", type=int, default=d.queue_size, help="threadpool: waiting requests before 503 (default: %(default)s)")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default=d.loop, help="asyncio engine's loop (default: %(default)s)")
    p.add_argument("--http", choices=["auto", "1", "2"], default=d.http,
                   help="protocols: auto (HTTP/1.1 and HTTP/2), 1 (HTTP/1.x only) or 2 (HTTP/2 only; "
                        "the plain port takes prior-knowledge h2c only) (default: %(default)s)")
    p.add_argument("--tls", action="store_true", help="serve TLS (ALPN h2, http/1.1); a dev certificate is made if none is given")
    p.add_argument("--tls-port", type=int, default=None, help="TLS port beside the plain --port (default: TLS on --port)")
    p.add_argument("--certfile", default=None, help="PEM certificate chain for --tls")
    p.add_argument("--keyfile", default=None, help="PEM private key for --tls")
    p.add_argument("--tls-cert", action="append", default=[], metavar="HOST=CERT,KEY",
                   help="certificate for clients asking for HOST by SNI (repeatable; HOST may be *.domain)")
    p.add_argument("--tls-host", action="append", default=[], metavar="HOST",
                   help="a development certificate for HOST from the dev CA in .certs/ (repeatable)")
    p.add_argument("--reuse-port", action="store_true",
                   help="SO_REUSEPORT; with several workers: a listening socket per worker, balanced by the "
                        "kernel's hash (default: one shared accept queue, one connection per wake-up)")
    p.add_argument("--db", default=None, metavar="URL",
                   help="the database of /db, /queries, /fortunes, /updates: postgresql://USER@HOST:PORT/DB, or "
                        "sqlite:///PATH (default: SQLite in --data-dir, created and seeded on first use)")
    p.add_argument("--db-pool", type=int, default=None, metavar="N",
                   help="PostgreSQL connections per copy (each process, thread worker or loop; default: threadpool "
                        "its --threads, processpool 1, selectors and asyncio 10)")
    p.add_argument("--db-pool-timeout", type=float, default=d.db_pool_timeout, metavar="S",
                   help="s a request waits for a free PostgreSQL connection of its copy before 503 (default: %(default)s)")
    p.add_argument("--redirect-http", action="store_true",
                   help="the plain --port answers 308 Permanent Redirect to https on --tls-port")
    a = p.parse_args(argv)
    tls_certs = []
    for spec in a.tls_cert:
        host, _, files = spec.partition("=")
        cert, _, key = files.partition(",")
        if not host or not cert or not key:
            p.error(f"--tls-cert wants HOST=CERT,KEY, not {spec!r}")
        tls_certs.append((host, cert, key))
    if a.tls_cert or a.tls_host:
        a.tls = True
    if a.redirect_http and a.tls_port is None:
        p.error("--redirect-http needs --tls-port (the port to redirect to)")
    if a.access_log not in (None, "-"):
        try:
            open(a.access_log, "a").close()
        except OSError as exc:
            p.error(f"--access-log {a.access_log}: {exc.strerror or exc}")
    workers = _workers(p, a.workers, a.engine)
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be a whole number >= 1, not {a.threads}")
    if a.threads is not None and a.engine != "threadpool":
        p.error("--threads sizes the threadpool engine's pool; the other engines have no pool")
    if a.engine == "threadpool" and a.workers is not None and a.threads is None:
        print(f"start_server: warning: --workers now counts processes on every engine (as in gunicorn, "
              f"uvicorn and granian): {workers} worker {a.worker_kind}(s) of 32 threads each. For the old meaning, "
              f"{workers} threads in one process, write --threads {workers}.", file=sys.stderr)
    if a.worker_kind == "interpreter":
        from .interpreters import unavailable_reason

        reason = unavailable_reason()
        if reason:
            p.error(reason)
        if a.loop == "uvloop":
            p.error("--loop uvloop cannot run in interpreter workers (uvloop does not support subinterpreters)")
        if a.db is not None and a.db.split("://", 1)[0] in ("postgresql", "postgres"):
            p.error("--db postgresql://... cannot run in interpreter workers: psycopg's binary build does not load "
                    "in a subinterpreter (and its pure-Python build needs libpq); use --worker-kind process or thread")
    if a.db_pool is not None and a.db_pool < 1:
        p.error(f"--db-pool must be a whole number >= 1, not {a.db_pool}")
    if a.db is not None and not (a.db.startswith("sqlite:///") or a.db.split("://", 1)[0] in ("postgresql", "postgres")):
        p.error(f"--db wants postgresql://... or sqlite:///PATH, not {a.db!r}")
    if (a.certfile is None) != (a.keyfile is None):
        p.error("--certfile and --keyfile go together")
    if a.tls_port is not None or a.certfile:
        a.tls = True
    return ServerConfig(
        engine=a.engine, host=a.host, port=a.port, workers=workers, worker_kind=a.worker_kind,
        supervised=(workers > 1 or a.workers is None and a.engine == "processpool"
                    or a.worker_kind in ("interpreter", "thread")), threads=a.threads, www=os.path.abspath(a.www),
        data_dir=os.path.abspath(a.data_dir), log_level=a.log_level, access_log=a.access_log is not None,
        access_log_file=a.access_log or "-", log_format=a.log_format,
        keepalive_timeout=a.keepalive_timeout, header_timeout=a.header_timeout,
        body_timeout=a.body_timeout, body_min_rate=a.body_min_rate,
        send_timeout=a.send_timeout, drain_timeout=a.drain_timeout,
        max_connections=a.max_connections, max_body_size=a.max_body_size,
        max_target_length=a.max_target_length, max_header_bytes=a.max_header_bytes,
        queue_size=a.queue_size, loop=a.loop, http=a.http, tls=a.tls, tls_port=a.tls_port,
        certfile=a.certfile, keyfile=a.keyfile, tls_hosts=tuple(a.tls_host), tls_certs=tuple(tls_certs),
        redirect_http=a.redirect_http, reuse_port=a.reuse_port, db=a.db, db_pool=a.db_pool,
        db_pool_timeout=a.db_pool_timeout)


def _import_what_serving_needs(config: ServerConfig) -> None:
    """Import the extension modules the options will load later (uvloop, TLS's cryptography), so
    that the GIL's state reported at start is the state the server serves with."""
    if config.loop == "uvloop":
        import uvloop  # noqa: F401
    if config.tls:
        import cryptography.x509  # noqa: F401
        import ssl  # noqa: F401


def _gil_report(runtime, messages: list[str]) -> str:
    """Log and return the GIL's state after every import (``"disabled"`` or ``"enabled"``); on a
    free-threaded build whose GIL an import turned back on, a warning names the module(s) (from
    CPython's RuntimeWarnings, ``messages``) and how to keep it off. Other warnings are re-issued."""
    state = "enabled" if runtime.gil_enabled() else "disabled"
    culprits = runtime.modules_that_enabled_the_gil(messages)
    for text in messages:
        if not runtime.GIL_WARNING.search(text):
            warnings.warn(text, RuntimeWarning, stacklevel=2)
    if runtime.free_threaded() and state == "enabled":
        why = (f"importing {', '.join(culprits)} turned it back on (not declared free-threading safe)"
               if culprits else f"PYTHON_GIL={os.environ.get('PYTHON_GIL', '')!s} or -X gil=1")
        logging.getLogger("lab.server").warning(
            "gil: enabled on a free-threaded build: %s; threads take turns. PYTHON_GIL=0 keeps it off "
            "(at the module's own risk)", why)
    else:
        logging.getLogger("lab.server").info("gil: %s (%s)", state,
                                             "free-threaded build" if runtime.free_threaded() else "GIL build")
    return state


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    config = parse_args(argv)
    logging.basicConfig(level=config.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    # Everything the server runs with is imported here, where a warning that an import turned a
    # free-threaded build's GIL back on can be caught and the module named (app/runtime.py).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        from app import create_app, runtime

        os.makedirs(config.data_dir, exist_ok=True)
        if is_postgres(config.db):
            why = check_postgres(config.db)
            if why is not None:
                print(f"start_server: cannot use the database {config.db}: {why}", file=sys.stderr)
                return 2
        app = create_app(config.www, config.data_dir, db=database_of(config))
        cls = engine_class(config.engine)
        _import_what_serving_needs(config)
    gil = _gil_report(runtime, [str(w.message) for w in caught])
    try:
        listeners = open_listeners(config)
    except OSError as exc:
        print(f"start_server: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for listener in listeners:
        if listener.tls is not None and config.tls_port is not None:
            config.tls_port = listener.address[1]  # the bound port (--tls-port 0), for redirects
    if config.supervised and config.worker_kind == "interpreter":
        from .interpreters import InterpreterSupervisor

        engine = InterpreterSupervisor(cls, app, config, listeners, config.workers)
    elif config.supervised and config.worker_kind == "thread":
        from .inprocess import ThreadSupervisor

        engine = ThreadSupervisor(cls, app, config, listeners, config.workers)
    elif config.supervised:
        engine = Supervisor(cls, app, config, listeners, config.workers)
    else:
        engine = cls(app, config, listeners)
    # Whoever reads the start-up line may send SIGTERM at once: hold the stop signals until the
    # engine's handlers are in place (SignalCommands, or asyncio's signals_ready), then deliver them,
    # so a stop that comes early is a drain and exit 0, never a kill by the default action.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    for listener in listeners:
        print(f"concurrency-lab: {config.engine} engine listening on {listener.url} "
              f"({engine.describe()}, pid {os.getpid()}; gil: {gil})", flush=True)
    engine.serve()
    return 0
