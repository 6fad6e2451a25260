"""A request's coroutine as an engine steps it, and the effects it yields (the engine side of
``app.effects``).

A :class:`Task` wraps one request's coroutine (``Exchange.respond``): route, run the handler,
send the response. ``task.step()`` runs it until it yields an effect or ends. The effects:

- :class:`app.effects.Sleep` (the handler awaited ``app.wait``): resume it after that long;
- :data:`PARK`: it waits for the peer (a request body, an HTTP/2 flow-control window); the
  session returns it from a later ``receive()``. Parking is race-free across threads: the waiter
  registers under the session lock before yielding, and ``Session.park()`` reports a wake-up
  that came in between, so a threadpool reader and worker can never lose one;
- :data:`FLUSH`: it produced a lot of output; write it before asking for more (backpressure);
- :class:`SendFile` (HTTP/1.x on plain TCP, when the engine set ``session.sendfile``): write the
  pending output, then a static file's bytes with ``sendfile`` (zero-copy), then resume it.

engines/lifecycle.py's ``Driver`` is the one loop that dispatches them to an engine's model.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from app.effects import Effect



class TaskOwner(Protocol):
    """What a :class:`Task` needs of the session that made it (``engines.session.Session``):
    to hear that its coroutine raised."""

    def task_failed(self, task: "Task") -> None:
        """``task``'s coroutine raised: reset its stream (HTTP/2) or end the connection."""

__all__ = ["Task", "TaskOwner", "SendFile", "http_date", "NO_LOCK"]

log = logging.getLogger("lab.session")


@dataclass(frozen=True, kw_only=True, slots=True)
class SendFile(Effect):
    """Effect: write pending output, then ``count`` bytes (from ``offset``) of the file at
    ``path`` straight to the socket (``socket.sendfile``/``os.sendfile``, zero-copy), then
    resume the task. Only yielded when the engine set ``Session.sendfile`` (plain TCP)."""

    path: str
    offset: int
    count: int


# (second, its IMF-fixdate): one tuple, replaced whole, so that threads running in parallel (no GIL)
# never read a second with another second's text; two threads may both format a new second (harmless).
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The current time as an IMF-fixdate (RFC 9110 §5.6.7), recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return cached[1]


class Task:
    """One request's coroutine, stepped by an engine. ``step()`` returns the next effect, or
    ``None`` when the request is finished (or was cancelled)."""

    __slots__ = ("session", "stream_id", "coro", "cancelled", "parked", "woken", "waiting", "wakeup", "reply",
                 "thrown")

    def __init__(self, session: TaskOwner, stream_id: int, coro: Any) -> None:
        self.session = session
        self.stream_id = stream_id
        self.coro = coro
        self.cancelled = False
        self.parked = False   # the engine has let go of it; the session owns it
        self.woken = False    # woken after registering a wait, before park() ran
        self.waiting = False  # registered as waiting (body data or flow-control window)
        self.wakeup: threading.Event | None = None  # set while sleep() blocks a thread
        self.reply: Any = None  # sent into the coroutine at the next step (a query's result)
        self.thrown: BaseException | None = None  # thrown into it instead (a query that failed)

    def step(self) -> Effect | None:
        """Run until the next effect. Returns ``None`` when done; never raises ``Exception``."""
        if self.cancelled:
            try:
                self.coro.close()
            except (RuntimeError, ValueError):  # ignored GeneratorExit / running in another thread
                log.warning("request task on stream %d did not close cleanly", self.stream_id)
            return None
        try:
            if self.thrown is not None:
                thrown, self.thrown = self.thrown, None
                return self.coro.throw(thrown)
            reply, self.reply = self.reply, None
            return self.coro.send(reply)
        except StopIteration:
            return None
        except Exception:  # a bug in the glue: log once, end this request only
            log.exception("request task failed on stream %d", self.stream_id)
            self.session.task_failed(self)
            return None

    def cancel(self) -> None:
        """Mark cancelled; the next ``step()`` closes the coroutine (GeneratorExit in the handler).
        A thread blocked in :meth:`sleep` for this task wakes at once."""
        self.cancelled = True
        wakeup = self.wakeup
        if wakeup is not None:
            wakeup.set()

    def sleep(self, seconds: float) -> None:
        """Blocking engines' way to honour a :class:`Sleep` effect: block this thread for
        ``seconds`` (s), or less when the task is cancelled meanwhile (an HTTP/2 stream reset,
        the connection lost), so that the worker is freed at once."""
        if self.cancelled:
            return
        event = self.wakeup = threading.Event()
        if not self.cancelled:
            event.wait(seconds)
        self.wakeup = None


class _NoLock:
    """The lock of code that one thread runs (single-threaded engines, processpool's writer):
    never contended, taking it costs nothing. The one "no lock" of the engines."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None

    def acquire(self, blocking: bool = True) -> bool:
        """Always taken at once."""
        return True

    def release(self) -> None:
        """Nothing to release."""
        return None


#: the one instance: ``lock is NO_LOCK`` tells one thread from several
NO_LOCK = _NoLock()
