"""The asyncio engine: one thread, asyncio transports and protocols (not streams).

Model: asyncio's event loop (or uvloop's, with ``--loop uvloop``) calls ``data_received`` on a
``Protocol`` per connection; the protocol feeds the session and steps the request coroutines it
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

from .config import ServerConfig
from .listeners import Listener, connection_info, tune_socket
from .session import FLUSH, PARK, SendFile, Session, Sleep, Task

__all__ = ["AsyncioEngine"]

log = logging.getLogger("lab.asyncio")

#: Static files go out with ``loop.sendfile`` in pieces of this many bytes, so that progress is
#: seen between pieces and a client that stops reading is cut off after ``--send-timeout``.
SENDFILE_PIECE = 1024 * 1024


class _Connection(asyncio.Protocol):
    """One connection: the transport, its session, and tasks waiting for the buffer to drain."""

    def __init__(self, engine: "AsyncioEngine", listener: Listener) -> None:
        self.engine = engine
        self.listener = listener
        self.loop = engine.loop
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.paused = False
        self.flush_waiters: list[Task] = []
        self.closed = False
        self.last_progress = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        engine = self.engine
        self.transport = transport  # type: ignore[assignment]
        if len(engine.connections) >= engine.config.max_connections:
            transport.write(engine.BUSY_503)  # type: ignore[attr-defined]
            transport.close()
            self.closed = True
            return
        engine.connections.add(self)
        engine.ids += 1
        # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and sockets
        # accepted from a listener made with socket.socket(AF_INET, SOCK_STREAM) have proto 0:
        # without this, a response head followed by a small sendfile body waited ~40 ms for the
        # client's delayed ACK (Nagle).
        raw = transport.get_extra_info("socket")
        if raw is not None:
            tune_socket(raw)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        info = connection_info(engine.ids, engine.name, peer, sock, ssl_object)
        self.session = Session(engine.app, engine.config, info)
        # loop.sendfile is zero-copy on asyncio's own loop over plain TCP (uvloop lacks it).
        self.session.sendfile = ssl_object is None and engine.config.loop == "asyncio"
        self.sendfile_task: asyncio.Task | None = None
        if engine.stopping:
            self.session.shutdown()
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._run(self.session.receive(data))

    def eof_received(self) -> bool:
        self._run(self.session.receive(b""))
        if self.session.busy and not self.session.closed:
            return True  # half-closed: answer what is in flight, then close
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.connections.discard(self)
        if self.session is not None:
            for task in self.session.connection_lost() + self.flush_waiters:
                task.step()
        self.flush_waiters = []

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
            self._run(waiters)

    # -- requests -----------------------------------------------------------------------------

    def _run(self, tasks: list[Task]) -> None:
        """Step tasks until each sleeps (call_later), parks, waits for the buffer, or ends."""
        session = self.session
        while tasks:
            for task in tasks:
                while True:
                    effect = task.step()
                    if effect is None:
                        break
                    if effect.__class__ is Sleep:
                        self.loop.call_later(effect.seconds, self._resume, task)
                        break
                    if effect is PARK:
                        if session.park(task):
                            continue
                        break
                    if effect is FLUSH:
                        self._flush()
                        if self.closed:  # nobody to write to: stop producing the body
                            task.cancel()
                        elif self.paused:
                            self.flush_waiters.append(task)
                            break
                    if effect.__class__ is SendFile:
                        self._flush()
                        self.last_progress = time.monotonic()
                        self.sendfile_task = self.loop.create_task(self._sendfile(task, effect))
                        break
            tasks = session.runnable()
        self._flush()

    async def _sendfile(self, task: Task, effect: SendFile) -> None:
        """Write a file range with ``loop.sendfile`` (os.sendfile underneath) in pieces of
        :data:`SENDFILE_PIECE` (progress for the send timeout), then resume the task."""
        try:
            with open(effect.path, "rb") as f:
                offset, left = effect.offset, effect.count
                while left > 0:
                    n = min(left, SENDFILE_PIECE)
                    if await self.loop.sendfile(self.transport, f, offset, n) != n:
                        raise OSError("file shrank while sending it")
                    offset += n
                    left -= n
                    self.last_progress = time.monotonic()
        except (OSError, RuntimeError, asyncio.CancelledError):  # cancelled: the send timeout
            self.sendfile_task = None
            if not self.closed:
                self.transport.abort()
            task.cancel()
            task.step()
            return
        self.sendfile_task = None
        self.last_progress = time.monotonic()
        if not self.closed:
            self._run([task])

    def _resume(self, task: Task) -> None:
        self._run([task])

    def _flush(self) -> None:
        if self.closed:
            return
        data = self.session.data_to_send()
        if data:
            self.transport.write(data)
            if not self.paused:
                self.last_progress = time.monotonic()
        if self.session.closed:
            self.closed = True
            self.transport.close()


class AsyncioEngine:
    """Serve ``app`` on ``listeners`` with asyncio (``--loop asyncio``) or uvloop (``--loop uvloop``)."""

    name = "asyncio"
    BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\n"
                b"retry-after: 1\r\nconnection: close\r\n\r\ntoo many connections")

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.connections: set[_Connection] = set()
        self.ids = 0
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None

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
            runner.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for s in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(s, stop.set)
        servers = []
        for listener in self.listeners:
            tls_options = ({"ssl": listener.tls, "ssl_handshake_timeout": self.config.header_timeout}
                           if listener.tls is not None else {})
            servers.append(await self.loop.create_server(
                lambda listener=listener: _Connection(self, listener), sock=listener.sock,
                backlog=self.config.backlog, **tls_options))
        checker = self.loop.create_task(self._check_timeouts())
        await stop.wait()
        log.info("signal: draining %d connections", len(self.connections))
        self.stopping = True
        for server in servers:
            server.close()
        for conn in list(self.connections):
            conn.session.shutdown()
            conn._flush()
        deadline = time.monotonic() + self.config.drain_timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.transport.abort()
        checker.cancel()
        await asyncio.sleep(0)

    async def _check_timeouts(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.closed:
                    continue
                if ((conn.paused or conn.sendfile_task is not None)
                        and now - conn.last_progress > self.config.send_timeout):
                    if conn.sendfile_task is not None:
                        conn.sendfile_task.cancel()  # before the abort: loop.sendfile unregisters
                        await asyncio.sleep(0)
                    conn.transport.abort()
                elif conn.session.check_timeouts(now):
                    conn._flush()
                    if not conn.closed:
                        conn.closed = True
                        conn.transport.close()
