"""Engine-neutral effects that handler coroutines yield to whoever drives them: :class:`Sleep`
(``app.wait``), :class:`Park` (waiting for the peer) and :class:`Flush` (backpressure). The
engines (engines/tasks.py adds ``SendFile``) and the ASGI adapter (app/asgi.py) drive the same ones.

Handlers are ``async def`` functions that never import asyncio. To wait (a simulated backend), they
``await app.wait(seconds)``, which yields a :class:`Sleep` effect up through every ``await`` to the
engine driving the coroutine with ``coro.send(None)``. Each engine honours it its own way: a worker
thread or process blocks in ``time.sleep``; the selectors loop puts the coroutine on its timer heap;
the asyncio engine resumes it after ``asyncio.sleep``. This is the generator-based scheduling of
David Beazley's "Python Concurrency From the Ground Up" (PyCon 2015).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

__all__ = ["Effect", "Sleep", "Park", "Flush", "PARK", "FLUSH", "suspend", "PARK_AWAIT", "FLUSH_AWAIT", "wait"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Effect:
    """Base class of what a handler coroutine may yield to its driver."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Sleep(Effect):
    """Resume the coroutine after ``seconds`` (float, s) without blocking other requests
    where the engine can (selectors, asyncio), or by blocking the worker (threadpool, processpool)."""

    seconds: float


class Park(Effect):
    """The coroutine waits for the peer (a request body, an HTTP/2 flow-control window): its
    driver resumes it when there is more (the engines' session hands it back from a later
    ``receive()``; the ASGI adapter awaits the next ``http.request`` message)."""


class Flush(Effect):
    """The coroutine produced a lot of output: write it before resuming it (backpressure)."""


PARK = Park()
FLUSH = Flush()


class suspend:
    """``await suspend(effect)``: yield one effect to the driver (a class, so that the two
    common awaitables are made once: :data:`PARK_AWAIT`, :data:`FLUSH_AWAIT`)."""

    __slots__ = ("effect",)

    def __init__(self, effect: Effect) -> None:
        self.effect = effect

    def __await__(self) -> Generator[Effect, None, None]:
        yield self.effect


PARK_AWAIT = suspend(PARK)
FLUSH_AWAIT = suspend(FLUSH)


class _Wait:
    __slots__ = ("effect",)

    def __init__(self, seconds: float) -> None:
        self.effect = Sleep(seconds=max(0.0, float(seconds)))

    def __await__(self) -> Generator[Effect, None, None]:
        yield self.effect


def wait(seconds: float) -> _Wait:
    """Return an awaitable that waits ``seconds`` (s); ``await wait(0.1)`` in a handler.

    Raises:
        ValueError: ``seconds`` is not a number.
    """
    return _Wait(seconds)
