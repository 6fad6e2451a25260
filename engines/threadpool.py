"""The threadpool engine: one process, a bounded pool of worker threads, blocking I/O.

Model (gunicorn's gthread worker): the main thread polls the listening sockets and every idle
connection with ``selectors``; when a connection has bytes to read it is handed to a worker
thread, which reads, feeds the protocol, runs the handlers and writes the answer with blocking
``sendall``. A handler that awaits ``app.wait(s)`` blocks its worker in ``time.sleep``: a waiting
request holds a thread, so throughput on a waiting workload is ``workers / wait`` (Little's law).
Idle keep-alive connections and slow clients still sending a request head sit in the poller and
pin no worker. When every worker is busy and ``--queue-size`` requests already wait, a new one is
answered 503 with Retry-After instead of hanging.

HTTP/2: the connection object is not thread-safe, so a session lock guards it; each stream's
handler is a separate job on the pool and writes its frames through the session under that lock,
while the connection goes back to the poller for more frames. Streams therefore run concurrently,
up to the pool size. The GIL lets only one thread run Python at a time: ``/cpu`` work does not
scale with threads.
"""

from __future__ import annotations

import logging
import queue
import selectors
import signal
import socket
import ssl
import threading
import time
from typing import Any, Callable

from .config import ServerConfig
from .listeners import Listener, connection_info, tune_socket
from .session import FLUSH, PARK, SendFile, Session, Sleep, Task

__all__ = ["ThreadPoolEngine", "PollingEngine"]

log = logging.getLogger("lab.threadpool")

RECV_SIZE = 256 * 1024
BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n"
            b"retry-after: 1\r\nconnection: close\r\n\r\nserver busy\n")


class _Connection:
    """One accepted socket (blocking, with a send timeout) and its session."""

    __slots__ = ("sock", "session", "listener", "write_lock", "closed", "id", "eof", "idle_since")

    def __init__(self, sock: socket.socket, listener: Listener, cid: int) -> None:
        self.sock = sock
        self.listener = listener
        self.session: Session | None = None
        self.write_lock = threading.Lock()
        self.closed = False
        self.id = cid
        self.eof = False
        self.idle_since = time.monotonic()


class PollingEngine:
    """A poller thread plus blocking jobs; subclasses choose where jobs run (``_dispatch``).

    Shared by the threadpool engine (jobs on worker threads) and each processpool worker (jobs
    inline, one at a time).
    """

    name = "polling"
    #: connections accepted per wake-up of the listener (processpool takes one, so that workers
    #: woken together share a burst of new connections instead of the first taking them all)
    accept_batch = 64
    session_lock: Callable[[], Any] = staticmethod(lambda: None)

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.selector = selectors.DefaultSelector()
        self.watched: set[_Connection] = set()
        self.connections: set[_Connection] = set()
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.ids = 0
        self.stopping = False
        self.drain_deadline = 0.0
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    def describe(self) -> str:
        """A few words for the start-up line."""
        return self.name

    # -- lifecycle ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM, then drain in-flight requests for ``drain_timeout`` s."""
        old_fd = signal.set_wakeup_fd(self.wake_w.fileno())
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.poll_forever()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_fd)

    def poll_forever(self) -> None:
        """The poller loop: accept, watch idle connections, hand readable ones to ``_dispatch``."""
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        for listener in self.listeners:
            listener.sock.setblocking(False)
            self.selector.register(listener.sock, selectors.EVENT_READ, listener)
        self.start_workers()
        next_check = time.monotonic() + 1.0
        try:
            while not (self.stopping and (not self.connections or time.monotonic() > self.drain_deadline)):
                for key, _ in self.selector.select(max(0.0, next_check - time.monotonic())):
                    data = key.data
                    if data is None:
                        self._drain_wakeups()
                    elif isinstance(data, Listener):
                        self._accept(data)
                    else:
                        self._unwatch(data)
                        self._dispatch(self._on_readable, data)
                self._run_commands()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 1.0
                    self._check_timeouts(now)
        finally:
            for conn in list(self.connections):
                self._close(conn)
            for listener in self.listeners:
                listener.sock.close()
            self.stop_workers()
            self.selector.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.commands.put(("stop", signum))

    def _drain_wakeups(self) -> None:
        try:
            while self.wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _post(self, command: str, conn: Any) -> None:
        """From a job: ask the poller thread to watch or close ``conn`` (it owns the selector)."""
        self.commands.put((command, conn))
        try:
            self.wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def _run_commands(self) -> None:
        while True:
            try:
                command, arg = self.commands.get_nowait()
            except queue.Empty:
                return
            if command == "watch":
                if not arg.closed:
                    if self.stopping and not arg.session.busy and arg.session.http_version != "2":
                        self._close(arg)  # HTTP/2 stays until its two-step GOAWAY is done
                    else:
                        self._watch(arg)
            elif command == "close":
                self._close(arg)
            elif command == "stop" and not self.stopping:
                self._begin_stop(arg)

    def _begin_stop(self, signum: int) -> None:
        log.info("signal %d: draining %d connections", signum, len(self.connections))
        self.stopping = True
        self.drain_deadline = time.monotonic() + self.config.drain_timeout
        for listener in self.listeners:
            self.selector.unregister(listener.sock)
            listener.sock.close()
        for conn in list(self.connections):
            if conn.session is None:
                self._close(conn)
                continue
            conn.session.shutdown()
            if conn in self.watched:
                closed = self._flush(conn)
                if closed or (not conn.session.busy and conn.session.http_version != "2"):
                    self._close(conn)  # HTTP/2 waits for the PING ack and its final GOAWAY

    # -- jobs ---------------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Start whatever runs jobs (nothing for inline engines)."""

    def stop_workers(self) -> None:
        """Stop whatever runs jobs."""

    def _dispatch(self, job: Callable[..., None], *args: Any) -> bool:
        """Run ``job(*args)`` somewhere; False when there is no room (the caller answers 503)."""
        raise NotImplementedError

    def _after_sleep(self) -> None:
        """Hook: a job's handler woke from a wait (inline engines take a pending stop here)."""

    def _connection_count(self) -> int:
        """Open connections counted against ``--max-connections``."""
        return len(self.connections)

    def _connections_changed(self) -> None:
        """Hook: a connection was added or closed (processpool shares the count)."""

    # -- connections --------------------------------------------------------------------------

    def _accept(self, listener: Listener) -> None:
        for _ in range(self.accept_batch):
            try:
                sock, peer = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            tune_socket(sock)
            if self._connection_count() >= self.config.max_connections:
                try:
                    sock.setblocking(False)
                    sock.send(BUSY_503)
                except OSError:
                    pass
                sock.close()
                continue
            sock.settimeout(self.config.send_timeout)
            self.ids += 1
            conn = _Connection(sock, listener, self.ids)
            self.connections.add(conn)
            self._connections_changed()
            if listener.tls is None:
                self._start_session(conn, peer)
                self._watch(conn)
            elif not self._dispatch(self._handshake, conn, peer):
                self._close(conn)

    def _handshake(self, conn: _Connection, peer: Any) -> None:
        """Job: blocking TLS handshake (bounded by the head timeout), then watch the connection."""
        try:
            conn.sock.settimeout(self.config.header_timeout)
            conn.sock = self.listeners_tls_wrap(conn)
            conn.sock.settimeout(self.config.send_timeout)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self._post("close", conn)
            return
        self._start_session(conn, peer)
        self._flush(conn)
        self._post("watch", conn)

    def listeners_tls_wrap(self, conn: _Connection) -> socket.socket:
        """Wrap and handshake ``conn.sock`` with its listener's TLS context (blocking)."""
        return conn.listener.tls.wrap_socket(conn.sock, server_side=True)

    def _start_session(self, conn: _Connection, peer: Any) -> None:
        sock = conn.sock
        tls = conn.listener.tls is not None
        info = connection_info(conn.id, self.name, peer, sock.getsockname(), sock if tls else None)
        conn.session = Session(self.app, self.config, info, lock=self.session_lock())
        conn.session.sendfile = not tls
        if tls or conn.session.http_version:
            self._flush(conn)

    def _watch(self, conn: _Connection) -> None:
        if conn not in self.watched and not conn.closed:
            self.watched.add(conn)
            conn.idle_since = time.monotonic()
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _unwatch(self, conn: _Connection) -> None:
        if conn in self.watched:
            self.watched.discard(conn)
            self.selector.unregister(conn.sock)

    def _on_readable(self, conn: _Connection) -> None:
        """Job: read what is there, feed the session, run or dispatch the requests it completes."""
        session = conn.session
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (socket.timeout, BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            self._post("watch", conn)
            return
        except OSError:
            self._post("close", conn)
            return
        if not data:
            conn.eof = True
        tasks = session.receive(data)
        multiplexed = session.http_version == "2"
        if multiplexed and not conn.eof and not session.closed:
            self._flush(conn)
            self._post("watch", conn)
            for task in tasks:
                if not self._dispatch(self._run, conn, [task]):
                    self._run(conn, [task])
            return
        self._run(conn, tasks)
        if not multiplexed:
            self._after_exchange(conn)

    def _after_exchange(self, conn: _Connection) -> None:
        session = conn.session
        if conn.closed:
            return
        if session.closed or (conn.eof and not session.busy):
            self._post("close", conn)
        elif not conn.eof:
            if conn.listener.tls is not None and conn.sock.pending():
                self._on_readable(conn)
            else:
                self._post("watch", conn)

    def _run(self, conn: _Connection, tasks: list[Task]) -> None:
        """Step tasks to completion in this thread: sleeps block it, parks hand the task back."""
        session = conn.session
        pending = list(tasks)
        while pending:
            task = pending.pop(0)
            while True:
                effect = task.step()
                if effect is None:
                    break
                if effect.__class__ is Sleep:
                    self._flush(conn)
                    task.sleep(effect.seconds)
                    self._after_sleep()
                elif effect is PARK:
                    self._flush(conn)
                    if not session.park(task):
                        break
                elif effect is FLUSH:
                    self._flush(conn)
                elif effect.__class__ is SendFile:
                    self._flush(conn)
                    self._sendfile(conn, effect)
                if conn.closed:  # a write failed or timed out: stop producing output for it
                    task.cancel()
            pending.extend(session.runnable())
        if self._flush(conn) and session.http_version == "2":
            self._post("close", conn)

    def _flush(self, conn: _Connection) -> bool:
        """Write what the session has to send. Returns whether the session was already closed
        when its bytes were taken: then everything it will ever send has been written. (Reading
        ``closed`` after taking the bytes would race with another worker thread ending the last
        HTTP/2 stream in between: the socket would be closed under that thread's final frames.)"""
        if conn.closed or conn.session is None:
            return False
        with conn.write_lock:
            closed = conn.session.closed
            data = conn.session.data_to_send()
            if not data:
                return closed
            try:
                conn.sock.sendall(data)
            except OSError:  # includes socket.timeout: the send timeout
                conn.closed = True
                self._post("close", conn)
        return closed

    def _sendfile(self, conn: _Connection, effect: SendFile) -> None:
        """Write a file range with ``socket.sendfile`` (zero-copy; honours the send timeout)."""
        if conn.closed:
            return
        with conn.write_lock:
            try:
                with open(effect.path, "rb") as f:
                    sent = conn.sock.sendfile(f, effect.offset, effect.count)
                if sent != effect.count:
                    raise OSError("file shrank while sending it")
            except OSError:
                conn.closed = True
                self._post("close", conn)

    def _close(self, conn: _Connection) -> None:
        self._unwatch(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            self._connections_changed()
            conn.closed = True
            try:
                conn.sock.close()
            except OSError:
                pass
            if conn.session is not None:
                for task in conn.session.connection_lost():
                    task.step()

    def _check_timeouts(self, now: float) -> None:
        for conn in list(self.watched):
            if conn.session is not None and conn.session.check_timeouts(now):
                try:
                    conn.sock.settimeout(0.5)
                    self._flush(conn)
                except OSError:
                    pass
                self._close(conn)


class ThreadPoolEngine(PollingEngine):
    """Serve ``app`` with ``--workers`` threads (default 32) fed by a bounded job queue."""

    name = "threadpool"
    session_lock = staticmethod(threading.Lock)

    def __init__(self, app: Any, config: ServerConfig, listeners: list[Listener]) -> None:
        super().__init__(app, config, listeners)
        self.size = config.workers or 32
        self.jobs: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self.threads: list[threading.Thread] = []

    def describe(self) -> str:
        """A few words for the start-up line."""
        return f"{self.size} worker threads, queue {self.config.queue_size}"

    def start_workers(self) -> None:
        """Start the worker threads (daemons: a stuck handler cannot keep the process alive)."""
        for i in range(self.size):
            t = threading.Thread(target=self._worker, name=f"worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def stop_workers(self) -> None:
        """Tell every worker to exit; does not wait for handlers still running."""
        for _ in self.threads:
            try:
                self.jobs.put_nowait(None)
            except queue.Full:
                break

    def _worker(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            job, args = item
            try:
                job(*args)
            except Exception:
                log.exception("job failed")
                conn = args[0] if args else None
                if isinstance(conn, _Connection):
                    self._post("close", conn)

    def _dispatch(self, job: Callable[..., None], *args: Any) -> bool:
        try:
            self.jobs.put_nowait((job, args))
            return True
        except queue.Full:
            conn = args[0]
            if job == self._on_readable:  # answer 503 from the poller rather than hang
                try:
                    conn.sock.settimeout(0.5)
                    conn.sock.sendall(BUSY_503)
                except OSError:
                    pass
                self._close(conn)
            return False
