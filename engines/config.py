"""Server configuration shared by every engine and by ``./start_server``.

All durations are seconds (float), all sizes bytes. The defaults are the lab's documented limits
(docs/limits-and-hardening.md, "Limits and defaults").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import ENGINES  # re-exported: the registry lives in engines/__init__.py

__all__ = ["ServerConfig", "ENGINES", "ROOT"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(kw_only=True, slots=True)
class ServerConfig:
    """Everything an engine needs to know; built by ``engines.server.parse_args``.

    Attributes:
        engine: one of :data:`ENGINES`.
        host, port: where the plain listener binds (port 0 picks a free port).
        workers: copies of the engine, each in its own process (``--workers``, as gunicorn, uvicorn
            and granian spell it); resolved by ``parse_args`` (processpool: the CPUs this process
            may use; other engines: 1).
        supervised: run the copies under engines/supervisor.py (``workers`` > 1, or processpool,
            whose model is pre-forked processes, or interpreter and thread workers); else the engine serves in
            this process.
        worker_kind: what each copy runs in (``--worker-kind``): ``"process"`` (forked),
            ``"interpreter"`` (a subinterpreter of this process, Python 3.14; engines/interpreters.py)
            or ``"thread"`` (a thread of this process; engines/inprocess.py).
        threads: the thread pool's size per process (threadpool; ``--threads``, gunicorn's word);
            ``None`` = 32.
        www: the static site's directory; data_dir: where ``POST /files/{name}`` writes.
        keepalive_timeout: an idle keep-alive connection is closed after this (s).
        header_timeout: a request head must arrive completely within this (s), else 408.
        body_timeout, body_min_rate: a request body must arrive by ``body_timeout`` s after its
            head plus one second per ``body_min_rate`` bytes received (Apache mod_reqtimeout's
            ``body=60,MinRate=500``; nginx's client_body_timeout is the same 60 s as an idle
            gap), else 408 (HTTP/2: GOAWAY(ENHANCE_YOUR_CALM)). A body trickled a byte a second
            is cut at about ``body_timeout``; a stalled one too.
        send_timeout: a client that accepts no bytes for this long is cut off (s).
        drain_timeout: on SIGTERM/SIGINT, in-flight requests get this long to finish (s).
        max_connections: open connections above this are refused (answered 503 and closed).
        max_body_size: request bodies above this get 413 (bytes).
        max_target_length: request targets above this get 414 (bytes).
        max_header_bytes: request heads above this get 431 (bytes).
        backlog: the listen() backlog.
        queue_size: threadpool: requests waiting for a worker above this get 503 + Retry-After.
        loop: asyncio engine's event loop, ``"asyncio"`` or ``"uvloop"``.
        access_log: log one line per request; access_log_file: where (``"-"`` = stderr, else a
            file opened for appending); log_format: ``"plain"`` or ``"json"`` (one object a line).
        tls: serve TLS on ``tls_port``; certfile/keyfile: PEM files (a development certificate is
            made when both are ``None``). ``tls_port`` becomes the bound port once listening.
        tls_hosts: host names given a development certificate each (SNI, ``--tls-host``);
            tls_certs: ``(host, certfile, keyfile)`` per host name (SNI, ``--tls-cert``).
        redirect_http: the plain port answers every request 308 to ``https://host:tls_port``.
        reuse_port: SO_REUSEPORT on the listeners; under the supervisor: a listener per worker,
            the kernel spreads new connections over them (else the workers share one accept
            queue, each worker taking one connection per wake-up).
        http: which protocols a connection may speak (granian's ``--http``): ``"auto"`` (HTTP/1.1,
            h2c by prior knowledge or Upgrade, ALPN h2 and http/1.1), ``"1"`` (HTTP/1.x only),
            ``"2"`` (HTTP/2 only: the plain port expects the client preface at once and answers
            anything else with GOAWAY(PROTOCOL_ERROR), RFC 9113 §3.4; TLS offers ALPN h2 only).
        db: the database of TechEmpower's routes (``--db``): ``None`` = SQLite in ``data_dir``,
            ``sqlite:///PATH``, or ``postgresql://...`` (engines/database.py).
        db_pool: PostgreSQL connections per copy (``--db-pool``); ``None`` = the engine's default
            (engines/database.py ``default_pool``). db_pool_timeout: s a request waits for a free
            connection before 503 (``--db-pool-timeout``).
    """

    engine: str = "selectors"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    supervised: bool = False
    worker_kind: str = "process"
    threads: int | None = None
    www: str = os.path.join(ROOT, "www")
    data_dir: str = os.path.join(ROOT, "data")
    keepalive_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    body_min_rate: float = 500.0
    send_timeout: float = 30.0
    drain_timeout: float = 10.0
    max_connections: int = 1000
    max_body_size: int = 10 * 1024 * 1024
    max_target_length: int = 8192
    max_header_bytes: int = 65536
    backlog: int = 1024
    queue_size: int = 1024
    loop: str = "asyncio"
    http: str = "auto"
    reuse_port: bool = False
    log_level: str = "INFO"
    access_log: bool = False
    access_log_file: str = "-"
    log_format: str = "plain"
    tls: bool = False
    tls_port: int | None = None
    certfile: str | None = None
    keyfile: str | None = None
    tls_hosts: tuple[str, ...] = ()
    tls_certs: tuple[tuple[str, str, str], ...] = ()
    redirect_http: bool = False
    db: str | None = None
    db_pool: int | None = None
    db_pool_timeout: float = 5.0
    extra: dict = field(default_factory=dict)
