"""``--worker-kind interpreter``: the copies of an engine in subinterpreters of one process
(Python 3.14, PEP 734 ``concurrent.interpreters``; one GIL each since PEP 684).

Theory of operation
-------------------
The same supervision as ``--worker-kind process`` (engines/supervisor.py: start N, replace one that
exits with the same back-off, SIGTERM/SIGINT drain every worker, the board for the whole server's
limits and gauges); only the four worker hooks differ:

    launch      a new isolated interpreter (``interpreters.create()``), run in a thread of the
                main interpreter by ``Interpreter.exec``: the worker imports the lab again
                (``engines``, ``app``, ``protocol``: nothing is shared but descriptors), builds the
                app, wraps the main interpreter's listening sockets (``socket.socket(fileno=
                os.dup(fd))``), maps the board from its memfd (``Board.from_fd``) and runs the
                engine through ``run_worker``, as a forked worker does
    exited      the thread ended: the engine returned, or the interpreter raised (logged with its
                traceback, the worker replaced)
    tell_stop   a byte on the worker's stop pipe: signals reach only the main interpreter, so the
                engine watches a stop descriptor instead of installing handlers (``Driver.stop_fd``)
    force_stop  a thread cannot be killed: a worker still running ``--drain-timeout`` + 2 s after
                the stop is abandoned, and the process exits without waiting for it

What a subinterpreter cannot load: extension modules without multi-phase init, among them uvloop
(``--loop uvloop`` is refused) and cryptography (so the main interpreter makes the development
certificates and reads the certificates' names, and hands both to the workers).

Fault injection for tests: ``LAB_WORKER_FAULT=start:K`` makes the first K worker starts raise
inside their interpreter before they serve (what a worker whose app fails to import looks like).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any, Callable

from .config import ServerConfig
from .listeners import Listener, certificate_names, dev_certificate, dev_host_certificate
from .inprocess import InProcessSupervisor, Worker
from .supervisor import Board

__all__ = ["InterpreterSupervisor", "available", "unavailable_reason", "worker_main"]

log = logging.getLogger("lab.interpreters")

#: the checkout's root, first on every worker's ``sys.path``
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unavailable_reason() -> str | None:
    """Why interpreter workers cannot run on this Python, or ``None`` when they can."""
    if sys.version_info < (3, 14):
        return (f"--worker-kind interpreter needs Python 3.14 or newer (concurrent.interpreters, PEP 734); "
                f"this is Python {sys.version.split()[0]}: run it as scripts/python3.14 ./start_server ...")
    try:
        from concurrent import interpreters  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a 3.14 built without it
        return f"--worker-kind interpreter: this Python has no concurrent.interpreters ({exc})"
    return None


def available() -> bool:
    """True when this Python can run interpreter workers."""
    return unavailable_reason() is None


class InterpreterSupervisor(InProcessSupervisor):
    """``workers`` copies of ``engine_class``, each in its own subinterpreter and thread.

    Args: as :class:`engines.supervisor.Supervisor` (``app`` serves the main interpreter only:
    each worker builds its own from ``config.www`` and ``config.data_dir``).

    Raises:
        RuntimeError: this Python cannot run interpreter workers (:func:`unavailable_reason`).
    """

    kind = "interpreter"
    prefix = "i"

    def __init__(self, engine_class: Any, app: Any, config: ServerConfig, listeners: list[Listener],
                 workers: int) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        super().__init__(engine_class, app, config, listeners, workers)
        self.spec = self._spec()

    def _spec(self) -> dict:
        """What every worker is handed (JSON): the options with the TLS files resolved here (the
        workers cannot load cryptography), the certificates' names, the listeners' descriptors,
        the board's descriptor."""
        config = self.config
        if config.tls:
            if config.certfile is None:
                certfile, keyfile, _ = dev_certificate()
                config = dataclasses.replace(config, certfile=certfile, keyfile=keyfile)
            hosts = [(h, *dev_host_certificate(h)) for h in config.tls_hosts]
            config = dataclasses.replace(config, tls_hosts=(), tls_certs=tuple(hosts) + tuple(config.tls_certs))
        fields = dataclasses.asdict(config)
        names = {}
        if config.tls:
            for cert in [config.certfile] + [c for _, c, _ in config.tls_certs]:
                names[cert] = list(certificate_names(cert))
        return {"root": ROOT, "config": fields, "cert_names": names, "size": self.size,
                "board_fd": self.board.fd, "engine": config.engine,
                "listeners": [[lst.sock.fileno(), lst.tls is not None] for lst in self.listeners],
                "log_level": logging.getLogger().level or logging.INFO}

    def body(self, worker: Worker, slot: int, fault: bool) -> Callable[[], str]:
        """A new interpreter that runs :func:`worker_main`; when the worker raised, its traceback
        is logged and the thread's answer says so (``"raised ValueError: ..."``)."""
        from concurrent import interpreters

        spec = dict(self.spec, slot=slot, stop_fd=worker.stop_r, worker=worker.number,
                    launched_at=self.started[slot])
        if fault:
            spec["fault"] = "start"
        code = (f"import sys\nsys.path[:0] = [{ROOT!r}]\n"
                f"from engines.interpreters import worker_main\nworker_main({json.dumps(spec)!r})\n")

        def run() -> str:
            interp = interpreters.create()
            try:
                interp.exec(code)
            except interpreters.ExecutionFailed as exc:
                log.error("worker %r (interpreter %d) failed:\n%s", worker, interp.id,
                          exc.excinfo.formatted or exc)
                return f"raised {exc.excinfo.type.__name__}: {exc.excinfo.msg}"
            finally:
                try:
                    interp.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing interpreter %d failed", interp.id, exc_info=True)
            return "returned"

        return run


def worker_main(spec_json: str) -> None:
    """Inside a subinterpreter: build the app and the engine from ``spec_json`` (see
    :meth:`InterpreterSupervisor._spec`) and serve until the stop descriptor turns readable.

    Raises:
        whatever building the app or the engine raises (the supervisor logs it and replaces
        this worker); RuntimeError for an injected fault (``LAB_WORKER_FAULT``).
    """
    import socket

    from app import create_app

    from . import engine_class
    from .listeners import make_tls_context
    from .supervisor import run_worker

    spec = json.loads(spec_json)
    logging.basicConfig(level=spec["log_level"], stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s[%(process)d/i{spec['worker']}]: %(message)s")
    if spec.get("fault") == "start":
        raise RuntimeError("injected fault (LAB_WORKER_FAULT=start:K): this worker fails before serving")
    fields = spec["config"]
    fields["tls_hosts"] = tuple(fields["tls_hosts"])
    fields["tls_certs"] = tuple(tuple(c) for c in fields["tls_certs"])
    config = ServerConfig(**fields)
    names = {cert: tuple(n) for cert, n in spec["cert_names"].items()}
    from .database import database_of

    app = create_app(config.www, config.data_dir, db=database_of(config))
    listeners = []
    for fd, tls in spec["listeners"]:
        sock = socket.socket(fileno=os.dup(fd))
        ctx = None
        if tls:
            ctx = make_tls_context(config.certfile, config.keyfile, config.tls_certs, config.http,
                                   names=lambda cert: names.get(cert, ()))
        listeners.append(Listener(sock, ctx))
    board = Board.from_fd(spec["board_fd"], spec["size"])
    run_worker(engine_class(spec["engine"]), app, config, listeners, board.slot(spec["slot"]),
               stop_fd=spec["stop_fd"], launched_at=spec["launched_at"], kind="interpreter")
