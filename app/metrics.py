"""Per-process request counters and latency percentiles, served as JSON at ``GET /_metrics``.

The glue (``engines/session.py``) calls :meth:`Metrics.observe` once per response with the route
pattern (``request.route``; ``"(unrouted)"`` for a 404/501 that matched nothing, ``"(protocol)"``
for an error the protocol layer answered), the status and the time from the request's head to
the end of its response. Counts are per process: under the processpool engine each worker has its
own (``pid`` in the snapshot tells them apart).

Definitions:
    requests: responses observed. errors: responses with status >= 500 (the server failed).
    client_errors: status 400..499 (the request was refused; counted apart, not as errors).
    latency: a bounded reservoir of the route's last ``reservoir`` durations; percentiles by the
    nearest-rank method, in milliseconds.
    in_flight: a gauge, the requests whose handler has started and not yet returned (the
    ``/_metrics`` request that reads it included). Tests poll it to know that requests reached
    their handlers. Under the processpool engine the gauge is shared by every worker (see
    :meth:`Metrics.share_in_flight`), so any worker's answer counts the whole server.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections import deque
from typing import Any

__all__ = ["Metrics", "percentile", "DEFAULT_RESERVOIR", "MAX_ROUTES"]

DEFAULT_RESERVOIR = 10_000
#: Routes beyond this many distinct names are counted under ``"(other)"`` (bounded memory).
MAX_ROUTES = 256


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ascending ``sorted_values``.

    Raises:
        ValueError: ``sorted_values`` is empty.
    """
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _peek(counter: itertools.count) -> int:
    """The next value ``counter`` would give, without taking it."""
    return counter.__reduce__()[1][0]


class _RouteStats:
    __slots__ = ("requests", "errors", "client_errors", "statuses", "samples")

    def __init__(self, reservoir: int) -> None:
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.statuses: dict[int, int] = {}
        self.samples: deque[float] = deque(maxlen=reservoir)


class Metrics:
    """Thread-safe counters by route. The hot path takes no lock: ``observe`` appends to a
    ``deque`` (atomic under the GIL, safe from the threadpool engine's many threads), and the
    counts are folded in under a lock every ``FOLD_AT`` observations and before each snapshot;
    ``begin`` and ``end`` are the gauge counters' own ``__next__`` (one C call each).

    Args:
        reservoir: how many recent durations each route keeps for its percentiles.
    """

    #: observations queued before they are folded into the counts (bounds the queue's memory)
    FOLD_AT = 1024

    def __init__(self, reservoir: int = DEFAULT_RESERVOIR) -> None:
        self._reservoir = reservoir
        self._routes: dict[str, _RouteStats] = {}
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._log: deque[tuple[str, int, float]] = deque()
        # The in-flight gauge without a lock on the hot path: next() on an itertools.count is
        # atomic under the GIL; the gauge is begun - ended.
        self._begun = itertools.count()
        self._ended = itertools.count()
        self.begin = self._begun.__next__  # type: ignore[method-assign]  # the methods below, in C
        self.end = self._ended.__next__  # type: ignore[method-assign]
        self._shared: Any = None
        self._slot = 0

    def share_in_flight(self, slots: Any, slot: int) -> None:
        """Also count this process's in-flight handlers in ``slots[slot]``, a shared-memory array
        (``multiprocessing.RawArray("i", n)``, one slot per worker process, each written only by
        its own single-threaded worker); :meth:`in_flight` then sums every slot."""
        view = memoryview(slots).cast("B").cast("i")  # indexing a memoryview: a tenth of ctypes'
        view[slot] = 0
        self._shared = view
        self._slot = slot
        del self.begin, self.end  # the methods, which also count in the shared slot

    def begin(self) -> None:
        """A handler starts: the in-flight gauge goes up by one."""
        next(self._begun)
        if self._shared is not None:
            self._shared[self._slot] += 1

    def end(self) -> None:
        """A handler returned or was cancelled: the in-flight gauge goes down by one."""
        next(self._ended)
        if self._shared is not None:
            self._shared[self._slot] -= 1

    def in_flight(self) -> int:
        """The in-flight gauge: handlers started and not yet ended (see the module docstring)."""
        if self._shared is not None:
            return sum(self._shared)
        return _peek(self._begun) - _peek(self._ended)

    def observe(self, route: str, status: int, duration_s: float) -> None:
        """Count one response: ``route`` (pattern), ``status`` (int), ``duration_s`` (seconds)."""
        log = self._log
        log.append((route, status, duration_s))
        if len(log) >= self.FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Move the queued observations into the per-route counts (under the lock; observations
        appended meanwhile are taken too, or left for the next fold)."""
        with self._lock:
            log = self._log
            routes = self._routes
            while log:  # only a fold pops, and folds hold the lock: ``log`` cannot empty under us
                route, status, duration_s = log.popleft()
                stats = routes.get(route)
                if stats is None:
                    if len(routes) >= MAX_ROUTES:
                        route = "(other)"
                        stats = routes.get(route)
                    if stats is None:
                        stats = routes[route] = _RouteStats(self._reservoir)
                stats.requests += 1
                if status >= 500:
                    stats.errors += 1
                elif status >= 400:
                    stats.client_errors += 1
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                stats.samples.append(duration_s)

    def reset(self) -> None:
        """Forget everything observed (between benchmark runs)."""
        with self._lock:
            self._log.clear()
            self._routes.clear()
            self._started = time.monotonic()

    def snapshot(self, engine: str) -> dict:
        """A JSON-ready dict::

            {"engine": "selectors", "pid": 1234, "uptime_s": 12.5,
             "requests": 10, "errors": 0, "client_errors": 1, "in_flight": 1,
             "routes": {"/plaintext": {"requests": 9, "errors": 0, "client_errors": 0,
                                       "statuses": {"200": 9},
                                       "latency_ms": {"p50": 0.05, "p95": 0.09, "p99": 0.1,
                                                      "max": 0.2, "samples": 9}}, ...}}

        ``latency_ms`` values are ``None`` for a route without samples.
        """
        self._fold()
        with self._lock:
            copied = {name: (s.requests, s.errors, s.client_errors, dict(s.statuses), list(s.samples))
                      for name, s in self._routes.items()}
            uptime = time.monotonic() - self._started
        routes = {}
        totals = [0, 0, 0]
        for name in sorted(copied):
            requests, errors, client_errors, statuses, samples = copied[name]
            samples.sort()
            if samples:
                latency = {f"p{p}": round(percentile(samples, p) * 1000, 3) for p in (50, 95, 99)}
                latency["max"] = round(samples[-1] * 1000, 3)
            else:
                latency = {"p50": None, "p95": None, "p99": None, "max": None}
            latency["samples"] = len(samples)
            routes[name] = {"requests": requests, "errors": errors, "client_errors": client_errors,
                            "statuses": {str(k): v for k, v in sorted(statuses.items())},
                            "latency_ms": latency}
            totals[0] += requests
            totals[1] += errors
            totals[2] += client_errors
        return {"engine": engine, "pid": os.getpid(), "uptime_s": round(uptime, 3),
                "requests": totals[0], "errors": totals[1], "client_errors": totals[2],
                "in_flight": self.in_flight(), "routes": routes}
