"""The asyncio engine: one thread, asyncio transports and protocols (not streams).

Model: asyncio's event loop (or uvloop's, with ``--loop uvloop``) calls ``buffer_updated`` on a
``BufferedProtocol`` per connection; the protocol feeds the session and steps the request coroutines it
returns right there. A handler that awaits ``app.wait(s)`` is resumed by ``loop.call_later(s)``
— what ``asyncio.sleep`` does underneath — so the loop never blocks, as in the selectors engine,
but the loop, its transports and (with uvloop) its I/O are the library's, not ours. Every HTTP/2
stream is its own coroutine on the loop. Writes go to the transport's buffer; when it passes the
high-water mark, ``pause_writing`` holds large bodies back until ``resume_writing``.

What it costs: one core at most, like the selectors engine; CPU work in a handler stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from app.db import DatabaseError, Query

from .config import ServerConfig
from .database import AsyncPools
from .lifecycle import RECV_SIZE, TICK_S, Driver, busy_answer
from .lifecycle import Connection as BaseConnection
from .listeners import Listener, tune_socket
from .tasks import SendFile, Task

__all__ = ["AsyncioEngine"]

log = logging.getLogger("lab.asyncio")

#: Static files go out with ``loop.sendfile`` in pieces of this many bytes, so that progress is
#: seen between pieces and a client that stops reading is cut off after ``--send-timeout``.
SENDFILE_PIECE = 1024 * 1024


class Connection(BaseConnection, asyncio.BufferedProtocol):
    """asyncio's callbacks for one connection, passed on to the engine's hooks; ``sock`` is the
    transport's socket, and it holds the transport and the tasks waiting for its buffer to drain.
    A buffered protocol: the transport reads into its engine's ``read_buffer`` (RECV_SIZE bytes,
    not its own 256 KiB a read: see RECV_SIZE)."""

    __slots__ = ("engine", "transport", "paused", "flush_waiters", "last_progress", "sendfile_task")

    def __init__(self, engine: "AsyncioEngine", listener: Listener) -> None:
        super().__init__(None, listener, 0)  # type: ignore[arg-type]
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.flush_waiters: list[Task] = []
        self.last_progress = time.monotonic()
        self.sendfile_task: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.engine.guard(self.engine.open, self, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.engine.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        engine = self.engine  # engine.guard(engine.read, ...), inlined: this is the hot path
        try:
            if self.session is not None:
                engine.run(self, engine.feed(self, bytes(engine.read_buffer[:nbytes])))
        except Exception:
            engine.failed(self)

    def eof_received(self) -> bool:
        self.engine.guard(self.engine.read, self, b"")
        return bool(self.session is not None and self.session.busy and not self.session.closed)

    def connection_lost(self, exc: Exception | None) -> None:
        self.engine.close(self)

    def pause_writing(self) -> None:
        # Backpressure both ways: a peer that does not read our output is not read from either,
        # so what it sends (requests, PINGs, SETTINGS) cannot pile answers up in memory.
        self.paused = True
        if not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if not self.closed:
            self.transport.resume_reading()
        self.last_progress = time.monotonic()
        if self.flush_waiters:
            waiters, self.flush_waiters = self.flush_waiters, []
            self.engine.guard(self.engine.run, self, waiters)


def _handshake_done(task: asyncio.Task) -> None:
    """A connection handed to asyncio by ``accept_one`` is set up, or failed (a TLS handshake
    refused or timed out): that one connection is gone, logged at DEBUG, nothing else."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("a connection failed to start: %s", task.exception())


class AsyncioEngine(Driver):
    """Serve ``app`` on ``listeners`` with asyncio (``--loop asyncio``) or uvloop (``--loop uvloop``)."""

    name = "asyncio"
    #: 0: asyncio's own servers accept (in batches of up to ``--backlog``); 1: one connection per
    #: wake-up of the listener, set by the supervisor when workers share one accept queue
    accept_batch = 0

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        self.ids = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db_pools = AsyncPools()  # PostgreSQL: this loop's pools, opened on first query
        # The buffer every connection of this loop reads into (``get_buffer``): the transport reads
        # into it and calls ``buffer_updated`` at once, in the loop's thread, so one buffer serves
        # the whole loop. One per engine, never one per module: thread workers run several loops
        # in one process, and a shared buffer let one loop's recv_into overwrite the bytes another
        # was copying (with or without the GIL: recv_into releases it) and, on 3.14t, raced the
        # memoryview's export count until it read as released ("operation forbidden on released
        # memoryview object" in asyncio's _read_ready__get_buffer, reset connections).
        self.read_buffer = memoryview(bytearray(RECV_SIZE))

    def describe(self) -> str:
        """A few words for the start-up line."""
        return f"1 thread, {self.config.loop} event loop"

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM, then drain in-flight requests for ``drain_timeout`` s."""
        if self.config.loop == "uvloop":
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        else:
            runner = asyncio.Runner()
        with runner:
            runner.run(self.main())

    async def main(self) -> None:
        """The lifecycle on asyncio's loop: its servers accept, its signal handlers (run by the
        loop, not in the handler) stop, a task ticks once a second, then the drain."""
        self.loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        if self.stop_fd is not None:  # an interpreter worker: no signals here, a stop descriptor
            self.loop.add_reader(self.stop_fd, stop.set)
        else:
            for s in (signal.SIGINT, signal.SIGTERM):
                self.loop.add_signal_handler(s, stop.set)
        self.signals_ready()
        servers = []
        if self.accept_batch == 1:  # one connection per wake-up: the queue is shared with other workers
            for listener in self.listeners:
                listener.sock.setblocking(False)
                self.loop.add_reader(listener.sock, self.accept_one, listener)
        else:
            servers = [await self.loop.create_server(lambda listener=listener: Connection(self, listener),
                                                     sock=listener.sock, backlog=self.config.backlog,
                                                     **self.tls_options(listener))
                       for listener in self.listeners]
        ticker = self.loop.create_task(self.tick())
        await stop.wait()
        if self.stop_fd is not None:
            self.loop.remove_reader(self.stop_fd)
        log.info("%s: draining %d connections", "signal" if self.stop_fd is None else "stop requested",
                 len(self.connections))
        self.stopping = True
        if not servers:
            for listener in self.listeners:
                self.loop.remove_reader(listener.sock)
        await self.accept_backlog()
        for server in servers:
            server.close()
        if not servers:
            for listener in self.listeners:
                listener.sock.close()
        self.shutdown_connections()
        deadline = time.monotonic() + self.config.drain_timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.transport.abort()
        ticker.cancel()
        await self.db_pools.close()
        await asyncio.sleep(0)

    async def accept_backlog(self) -> None:
        """Drain: take the connections the kernel accepted that asyncio's servers have not, so
        that closing the listeners resets none of them; each is served (or 503) like the rest."""
        pending = []
        for listener in self.listeners:
            while True:
                try:
                    sock, _ = listener.sock.accept()
                except OSError:  # BlockingIOError: the backlog is empty
                    break
                pending.append(self.loop.connect_accepted_socket(
                    lambda listener=listener: Connection(self, listener), sock, **self.tls_options(listener)))
        for result in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(result, Exception):
                log.debug("a connection from the backlog failed: %s", result)

    def accept_one(self, listener: Listener) -> None:
        """The listener is readable and its queue is shared: take one connection (the next
        wake-up, here or in another worker, takes the next) and hand it to asyncio."""
        try:
            sock, _ = listener.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("accept failed: %s", exc)
            return
        task = self.loop.create_task(self.loop.connect_accepted_socket(
            lambda: Connection(self, listener), sock, **self.tls_options(listener)))
        task.add_done_callback(_handshake_done)

    def tls_options(self, listener: Listener) -> dict[str, Any]:
        """asyncio's TLS arguments for ``listener`` (none for plain TCP)."""
        if listener.tls is None:
            return {}
        return {"ssl": listener.tls, "ssl_handshake_timeout": self.config.header_timeout}

    async def tick(self) -> None:
        """Once a second: ``check_timeouts``."""
        while True:
            await asyncio.sleep(TICK_S)
            self.check_timeouts(time.monotonic())

    def failed(self, conn: Connection) -> None:
        """An unexpected exception in ``conn``'s handling (being handled): log it, abort ``conn``."""
        log.exception("a connection failed; closing it")
        if conn.transport is not None:
            conn.transport.abort()

    # -- the model's hooks, in the order of engines/lifecycle.py ------------------------------

    def open(self, conn: Connection, transport: asyncio.BaseTransport) -> None:
        """asyncio accepted a connection (and finished its TLS handshake): refuse it past
        ``--max-connections``, else start its session."""
        conn.transport = transport  # type: ignore[assignment]
        conn.sock = transport.get_extra_info("socket")
        if self.connection_count() >= self.config.max_connections:  # after asyncio's TLS handshake
            transport.write(busy_answer(conn.sock, transport.get_extra_info("ssl_object")))  # type: ignore[attr-defined]
            transport.close()
            conn.closed = True
            return
        self.connections.add(conn)
        self.connections_changed()
        self.ids += 1
        conn.id = self.ids
        # asyncio sets TCP_NODELAY only when proto is IPPROTO_TCP (ours is 0): without it a head
        # and a small sendfile body waited ~40 ms for the client's delayed ACK (Nagle).
        if conn.sock is not None:
            tune_socket(conn.sock)
        ssl_object = transport.get_extra_info("ssl_object")
        # loop.sendfile is zero-copy on asyncio's own loop over plain TCP (uvloop lacks it).
        self.begin_session(conn, self.ids, transport.get_extra_info("peername"), transport.get_extra_info("sockname"),
                           ssl_object, sendfile=ssl_object is None and self.config.loop == "asyncio")

    def read(self, conn: Connection, data: bytes) -> None:
        """Bytes arrived (``b""``: EOF): feed the session, run the tasks it completes."""
        if conn.session is not None:
            self.run(conn, self.feed(conn, data))

    def on_sleep(self, conn: Connection, task: Task, seconds: float) -> bool:
        """``loop.call_later``: what ``asyncio.sleep`` does underneath; the loop never blocks."""
        self.loop.call_later(seconds, self.guard, self.run, conn, [task])
        return False

    def on_query(self, conn: Connection, task: Task, query: Query) -> bool:
        """PostgreSQL: the query awaits a connection of this loop's ``AsyncConnectionPool`` in a
        task of its own (engines/database.py), and resumes the request when it is done; SQLite
        inline."""
        if query.db.name != "postgresql":
            return super().on_query(conn, task, query)
        self.loop.create_task(self.query(conn, task, query))
        return False

    async def query(self, conn: Connection, task: Task, query: Query) -> None:
        """Run ``query`` on the loop's pool; resume ``task`` with the result or the error."""
        try:
            task.reply = await self.db_pools.run(query)
        except DatabaseError as exc:
            task.thrown = exc
        self.guard(self.run, conn, [task])

    def on_flush(self, conn: Connection, task: Task) -> bool:
        """Write to the transport; while it is paused (past its high-water mark), wait."""
        self.flush(conn)
        if conn.closed or not conn.paused:
            return True
        conn.flush_waiters.append(task)
        return False

    def on_sendfile(self, conn: Connection, task: Task, effect: SendFile) -> bool:
        """Write pending output, then the file range from a task of its own (``loop.sendfile``)."""
        self.flush(conn)
        conn.last_progress = time.monotonic()
        conn.sendfile_task = self.loop.create_task(self.sendfile(conn, task, effect))
        return False

    async def sendfile(self, conn: Connection, task: Task, effect: SendFile) -> None:
        """Write a file range with ``loop.sendfile`` (os.sendfile underneath) in pieces of
        :data:`SENDFILE_PIECE` (progress for the send timeout), then resume the task."""
        try:
            with open(effect.path, "rb") as f:
                offset, left = effect.offset, effect.count
                while left > 0:
                    n = min(left, SENDFILE_PIECE)
                    if await self.loop.sendfile(conn.transport, f, offset, n) != n:
                        raise OSError("file shrank while sending it")
                    offset += n
                    left -= n
                    conn.last_progress = time.monotonic()
        except (OSError, RuntimeError, asyncio.CancelledError):  # cancelled: the send timeout
            conn.sendfile_task = None
            if not conn.closed:
                conn.transport.abort()
            task.cancel()
            task.step()
            return
        conn.sendfile_task = None
        conn.last_progress = time.monotonic()
        if not conn.closed:
            self.guard(self.run, conn, [task])

    def flush(self, conn: Connection) -> None:
        """Write the session's bytes to the transport; close it once the session has ended."""
        if conn.closed:
            return
        data = conn.session.data_to_send()
        if data:
            conn.transport.write(data)
            if not conn.paused:
                conn.last_progress = time.monotonic()
        if conn.session.closed:
            conn.closed = True
            conn.transport.close()

    ran = flush  # after Driver.run: write (an alias, one call less per request)

    def close(self, conn: Connection) -> None:
        """asyncio lost the connection: forget it, cancel its tasks."""
        conn.closed = True
        self.connections.discard(conn)
        self.connections_changed()
        if conn.session is not None:
            for task in conn.session.connection_lost() + conn.flush_waiters:
                task.step()
        conn.flush_waiters = []

    def check_timeouts(self, now: float) -> None:
        """Send timeout (paused or sendfile without progress), and the session's own."""
        for conn in list(self.connections):
            if conn.closed:
                continue
            if (conn.paused or conn.sendfile_task is not None) and self.send_stalled(conn.last_progress, now):
                if conn.sendfile_task is not None:  # it aborts the transport once loop.sendfile lets go
                    conn.sendfile_task.cancel()
                else:
                    conn.transport.abort()
            elif conn.session.check_timeouts(now):
                self.flush(conn)
                if not conn.closed:
                    conn.closed = True
                    conn.transport.close()
