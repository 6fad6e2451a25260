"""The processpool engine: the blocking model served inline, one request at a time per process.

Model (pre-fork, as Apache's prefork MPM and gunicorn's sync workers): each worker process is
single-threaded and serves with blocking I/O: it polls the listening socket and its idle
keep-alive connections, and when one has a request it reads, runs the handler and writes the
answer inline. A handler that awaits ``app.wait(s)`` blocks the whole process in ``time.sleep``.
The copies are not this file's business: ``./start_server --engine processpool`` runs this engine
under the supervisor (engines/supervisor.py) with ``--workers`` = the CPUs it may use by default,
exactly as ``--workers N`` runs N copies of any other engine. This file shows the model only.

What it costs: a waiting request holds a process, so throughput on a waiting workload is
``workers / wait``. In exchange there is no GIL between workers: ``/cpu`` work scales with the
number of processes. Memory is one interpreter per worker. HTTP/2 streams of one connection are
served one after another, in order, by the worker that owns the connection (no concurrency
between streams); concurrency comes from connections spread over workers. The cost is head-of-line
blocking inside a connection: 20 concurrent streams of ``/io?ms=200`` on one connection take
20 x 200 ms = 4 s here, against about 200 ms on threadpool, selectors and asyncio
(tests/engines/test_http2.py checks both).

Connections are not moved between workers: a worker accepts one connection per wake-up of the
shared listener (``accept_batch = 1``, as every engine under the supervisor), so that a burst of
new connections is shared. When the
workers share one core, the first one woken can still take every connection that sends no
request at once (HTTP/2 clients send a preface first); its peers then idle while it serves them
all. ``--reuse-port`` gives each worker a ``SO_REUSEPORT`` listener of its own (the supervisor
only holds the port): the kernel then spreads new connections over the workers by a hash of their
addresses, and each worker accepts from its own queue in batches; the price is that a stalled
worker's queue keeps its share of new connections, which wait.
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any, Callable

from .blocking import BlockingEngine, Connection
from .lifecycle import DRAINED
from .config import ServerConfig
from .listeners import Listener
from .tasks import Task

__all__ = ["ProcessPoolEngine"]

log = logging.getLogger("lab.processpool")


class ProcessPoolEngine(BlockingEngine):
    """The blocking model with every job run inline: one request at a time in this process."""

    name = "processpool"
    #: ``--workers`` when none is given: the CPUs this process may use (``"auto"``)
    default_workers = "auto"
    accept_batch = 1

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        if config.reuse_port:  # its own accept queue: no burst to share with the others
            self.accept_batch = 64

    def describe(self) -> str:
        """A few words for the start-up line."""
        return "1 thread, blocking, one request at a time"

    # -- the model: where a job runs ----------------------------------------------------------

    def dispatch(self, job: Callable[..., None], conn: Connection, *args: Any) -> bool:
        """Run ``job(conn, *args)`` here and now (the process blocks), then take commands. Past
        the drain's deadline a job is not run: the connection gets what the end of the drain gives
        every connection (503 + Retry-After for a request not yet read), so that the ready
        connections of one ``select`` do not keep a draining worker serving past its deadline."""
        if self.stopping and time.monotonic() > self.drain_deadline:
            self.close(conn, DRAINED)
            return True
        job(conn, *args)
        self.run_commands()
        return True

    def flush(self, conn: Connection, wait: bool = False) -> bool:
        """Write what the session has to send: one thread writes here, nobody to hand bytes to,
        no lock. Returns whether the session was closed when its last bytes were taken (as
        ``BlockingEngine.flush``)."""
        session = conn.session
        if conn.closed or session is None:
            return False
        closed = session.closed
        data = session.data_to_send()
        if data:
            try:
                conn.sock.sendall(data)
            except OSError:
                conn.closed = True
                self.post("close", conn)
                return False
        if closed and not session.in_order:  # the final GOAWAY is out: close
            self.post("close", conn)
        return closed

    def on_sleep(self, conn: Connection, task: Task, seconds: float) -> bool:
        """Block the whole process for the wait, in ``select`` on the wake-up channel: a SIGTERM
        meanwhile starts the drain at once (the listeners close, the response in progress will
        carry Connection: close), then the wait goes on."""
        self.flush(conn)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not task.cancelled:
            if select.select([self.wake_r], [], [], left)[0]:
                self.drain_wakeups()
                self.run_commands()
        return True
