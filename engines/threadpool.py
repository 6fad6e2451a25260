"""The threadpool engine: one process, a bounded pool of worker threads, blocking I/O.

Model (gunicorn's gthread worker): the main thread runs the lifecycle's loop over the listening
sockets and every idle connection; when a connection has bytes to read it is handed to a worker
thread, which reads, feeds the protocol, runs the handlers and writes the answer with blocking
``sendall`` (engines/blocking.py). A handler that awaits ``app.wait(s)`` blocks its worker in
``time.sleep``: a waiting request holds a thread, so throughput on a waiting workload is
``threads / wait`` (Little's law). Idle keep-alive connections and slow clients still sending a
request head sit in the poller and pin no worker. When every worker is busy and
``--queue-size`` jobs already wait, a new request is answered 503 with Retry-After instead of
hanging.

HTTP/2: the connection object is not thread-safe, so a session lock guards it; each stream's
handler is a separate job on the pool and writes its frames through the session under that lock,
while the connection goes back to the poller for more frames. Streams therefore run concurrently,
up to the pool size. The GIL lets only one thread run Python at a time: ``/cpu`` work does not
scale with threads.
"""

from __future__ import annotations

import logging
import queue
import _thread
import threading
from typing import Any, Callable

from .blocking import BlockingEngine, Connection
from .config import ServerConfig
from .listeners import Listener

__all__ = ["ThreadPoolEngine"]

log = logging.getLogger("lab.threadpool")


class ThreadPoolEngine(BlockingEngine):
    """Serve ``app`` with ``--threads`` threads (default 32) fed by a bounded job queue."""

    name = "threadpool"
    #: several threads run handlers (the supervisor's start-up line names ``--threads``)
    threaded = True
    session_lock = staticmethod(threading.Lock)
    write_lock = staticmethod(threading.Lock)

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        self.size = config.threads or 32
        # One connection's HTTP/2 streams may hold a quarter of the pool: a client that opens
        # 100 streams and stops reading cannot take every worker from the others.
        self.streams_per_connection = max(1, self.size // 4)
        self.jobs: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self.threads: list[threading.Thread] = []

    def describe(self) -> str:
        """A few words for the start-up line."""
        return (f"{self.size} worker threads, queue {self.config.queue_size}, "
                f"{self.streams_per_connection} per HTTP/2 connection")

    # -- the model: where a job runs ----------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (daemons where allowed: a stuck handler cannot keep the process
        alive; a subinterpreter allows none, and its supervisor abandons a worker that does not
        drain in time)."""
        daemon = getattr(_thread, "daemon_threads_allowed", lambda: True)()
        for i in range(self.size):
            t = threading.Thread(target=self.worker, name=f"worker-{i}", daemon=daemon)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        """Tell every worker to exit; does not wait for handlers still running."""
        for _ in self.threads:
            try:
                self.jobs.put_nowait(None)
            except queue.Full:
                break

    def dispatch(self, job: Callable[..., None], conn: Connection, *args: Any) -> bool:
        """Queue ``job(conn, *args)`` for a worker thread; False when the queue is full."""
        try:
            self.jobs.put_nowait((job, conn, args))
            return True
        except queue.Full:
            return False

    def worker(self) -> None:
        """A worker thread: run jobs until told to stop; a job that raises closes its connection."""
        while True:
            item = self.jobs.get()
            if item is None:
                return
            job, conn, args = item
            try:
                job(conn, *args)
            except Exception:
                log.exception("job failed on connection %d; closing it", conn.id)
                self.post("close", conn)
