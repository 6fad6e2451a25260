"""Per-process request counters and latency percentiles, served as JSON at ``GET /_metrics``.

The glue (``engines/session.py``) calls :meth:`Metrics.observe` once per response with the route
pattern (``request.route``; ``"(unrouted)"`` for a 404/501 that matched nothing, ``"(protocol)"``
for an error the protocol layer answered), the status and the time from the request's head to
the end of its response. Counts are kept per process and merged for the whole server (below).

Definitions:
    requests: responses observed. errors: responses with status >= 500 (the server failed).
    client_errors: status 400..499 (the request was refused; counted apart, not as errors).
    latency: every duration since the start (or :meth:`Metrics.reset`) in a histogram of log
    buckets, 16 per doubling (as HdrHistogram, with a fixed relative precision): a percentile
    (nearest rank) is the upper edge of its bucket, at most 4.4 % above the true value and never
    above the exact max; ``samples`` counts every duration, so it equals ``requests``. Milliseconds.
    in_flight: a gauge, the requests whose handler has started and not yet returned (the
    ``/_metrics`` request that reads it included). Tests poll it to know that requests reached
    their handlers.

The whole server (``--workers N``, engines/supervisor.py): each worker's metrics are given its
slot on the supervisor's shared board (:meth:`Metrics.share`). The in-flight gauge is then a
slot per worker in shared memory (summed when read), each worker publishes its counts and a
latency histogram per route twice a second, and the worker that answers ``/_metrics`` reports the
whole server: counters and gauges summed, each process's own line under ``processes`` (with how
old its figures are), and route percentiles from the merged histograms. Percentiles are never
averaged across processes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from collections import deque
from typing import Any

from . import runtime

__all__ = ["Metrics", "percentile", "histogram_bucket", "histogram_percentile", "MAX_ROUTES",
           "BUCKETS_PER_DOUBLING"]

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


#: histogram resolution: buckets per doubling of the duration (relative width 2 ** (1/16) - 1)
BUCKETS_PER_DOUBLING = 16


def histogram_bucket(duration_s: float) -> int:
    """The histogram bucket of ``duration_s`` (s): ``floor(16 * log2(µs))``, 0 below 1 µs."""
    us = duration_s * 1e6
    return int(math.log2(us) * BUCKETS_PER_DOUBLING) if us > 1.0 else 0


def histogram_percentile(counts: dict[int, int], p: float) -> float:
    """The nearest-rank ``p``-th percentile (ms) of a histogram ``{bucket: count}``: the upper
    edge of the bucket holding that rank.

    Raises:
        ValueError: the histogram is empty.
    """
    total = sum(counts.values())
    if not total:
        raise ValueError("no samples")
    rank = max(1, math.ceil(p / 100.0 * total))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return 2 ** ((bucket + 1) / BUCKETS_PER_DOUBLING) / 1000.0
    raise AssertionError("unreachable: the ranks add up to total")  # pragma: no cover


def _peek(counter: itertools.count) -> int:
    """The next value ``counter`` would give, without taking it: read from its ``repr``
    (``count(5)``), which every Python prints alike (``__reduce__``, read before, is gone in 3.14)."""
    return int(repr(counter)[6:-1])


class _RouteStats:
    __slots__ = ("requests", "errors", "client_errors", "statuses", "histogram", "max_s")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.statuses: dict[int, int] = {}
        self.histogram: dict[int, int] = {}  # bucket (histogram_bucket) -> durations in it
        self.max_s = 0.0


class Metrics:
    """Thread-safe counters by route, with or without a GIL. The hot path takes no lock:
    ``observe`` appends to a ``deque``, and the counts are folded in under a lock every
    ``FOLD_AT`` observations and before each snapshot; ``begin`` and ``end`` are the gauge
    counters' own ``__next__`` (one C call each).

    Why that holds without the GIL (free-threaded 3.14t, the threadpool engine's threads running
    in parallel): ``deque.append`` and ``popleft`` lock the deque itself (a per-object critical
    section, PEP 703), and ``next()`` on an ``itertools.count`` is an atomic compare-and-swap there
    (Modules/itertoolsmodule.c ``count_next``), so no observation and no gauge step is lost. Every
    other count (``_RouteStats``) is written only by :meth:`_fold`, under ``_lock``. A ``+= 1`` on
    a shared attribute would lose updates; there is none on the hot path.

    Memory: per route, its counters and at most a few hundred histogram buckets (16 per
    doubling from 1 µs up), whatever the number of requests.
    """

    #: observations queued before they are folded into the counts (bounds the queue's memory)
    FOLD_AT = 1024

    def __init__(self) -> None:
        #: who this copy is, published with its figures when it is one worker of several:
        #: ``{"worker": slot, "worker_kind": "process" | "interpreter", "ready_ms": ms from its start}``
        self.identity: dict = {}
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
        self._board: Any = None
        self._gauge_lock = threading.Lock()

    def share_in_flight(self, slots: Any, slot: int) -> None:
        """Also count this process's in-flight handlers in ``slots[slot]``, a shared int32 array
        (``multiprocessing.RawArray("i", n)`` or a memoryview cast to ``"i"``, one slot per worker
        process); :meth:`in_flight` then sums every slot."""
        view = memoryview(slots)
        if view.format != "i":
            view = view.cast("B").cast("i")  # indexing a memoryview: a tenth of ctypes'
        view[slot] = 0
        self._shared = view
        self._slot = slot
        del self.begin, self.end  # the methods, which also count in the shared slot

    def share(self, board: Any) -> None:
        """Make this process one worker of a whole server: ``board`` is its slot on the
        supervisor's board (engines/supervisor.py ``BoardSlot``: ``in_flight_view()``,
        ``publish(bytes)``, ``others()``, ``connections_of(i)``, ``in_flight_of(i)``). From now on the gauge is shared,
        routes keep histograms, and :meth:`snapshot` reports the whole server."""
        self.share_in_flight(*board.in_flight_view())
        self._board = board

    def begin(self) -> None:
        """A handler starts: the in-flight gauge goes up by one."""
        next(self._begun)
        if self._shared is not None:
            with self._gauge_lock:  # += on shared memory is a read and a write: threads race
                self._shared[self._slot] += 1

    def end(self) -> None:
        """A handler returned or was cancelled: the in-flight gauge goes down by one."""
        next(self._ended)
        if self._shared is not None:
            with self._gauge_lock:
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
                        stats = routes[route] = _RouteStats()
                stats.requests += 1
                if status >= 500:
                    stats.errors += 1
                elif status >= 400:
                    stats.client_errors += 1
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if duration_s > stats.max_s:
                    stats.max_s = duration_s
                bucket = histogram_bucket(duration_s)
                stats.histogram[bucket] = stats.histogram.get(bucket, 0) + 1

    def reset(self) -> None:
        """Forget everything observed (between benchmark runs)."""
        with self._lock:
            self._log.clear()
            self._routes.clear()
            self._started = time.monotonic()

    def publication(self) -> dict:
        """This process's figures for the board (JSON-ready)::

            {"pid": 1234, "uptime_s": 12.5, "requests": 10, "errors": 0, "client_errors": 1,
             "in_flight": 1, "routes": {"/plaintext": {"requests": 9, "errors": 0,
             "client_errors": 0, "statuses": {"200": 9}, "max_ms": 0.2,
             "histogram": {"103": 4, "110": 5}}, ...}}
        """
        self._fold()
        with self._lock:
            routes = {name: {"requests": st.requests, "errors": st.errors, "client_errors": st.client_errors,
                             "statuses": {str(k): v for k, v in st.statuses.items()},
                             "max_ms": round(st.max_s * 1000, 3),
                             "histogram": {str(k): v for k, v in st.histogram.items()}}
                      for name, st in self._routes.items()}
            uptime = time.monotonic() - self._started
        own = self._shared[self._slot] if self._shared is not None else self.in_flight()
        return {"pid": os.getpid(), **self.identity, "uptime_s": round(uptime, 3), "in_flight": own,
                "requests": sum(r["requests"] for r in routes.values()),
                "errors": sum(r["errors"] for r in routes.values()),
                "client_errors": sum(r["client_errors"] for r in routes.values()), "routes": routes}

    def snapshot(self, engine: str) -> dict:
        """A JSON-ready dict::

            {"engine": "selectors", "pid": 1234, "uptime_s": 12.5, "gil": "enabled",
             "python": {...runtime.build_info()...},
             "requests": 10, "errors": 0, "client_errors": 1, "in_flight": 1,
             "routes": {"/plaintext": {"requests": 9, "errors": 0, "client_errors": 0,
                                       "statuses": {"200": 9},
                                       "latency_ms": {"p50": 0.05, "p95": 0.09, "p99": 0.1,
                                                      "max": 0.2, "samples": 9}}, ...}}

        ``latency_ms`` values are ``None`` for a route without samples; percentiles come from the
        route's histogram (module docstring). Under the supervisor (:meth:`share`) it is the whole
        server's: see :meth:`whole_server`.
        """
        if self._board is not None:
            return self.whole_server(engine)
        mine = self.publication()
        info = runtime.build_info()
        return {"engine": engine, "pid": os.getpid(), "uptime_s": mine["uptime_s"], "gil": info["gil"],
                "python": info, "requests": mine["requests"], "errors": mine["errors"],
                "client_errors": mine["client_errors"], "in_flight": self.in_flight(),
                "routes": _merged_routes([mine])}

    def whole_server(self, engine: str) -> dict:
        """The whole server's figures, from this process's own (fresh) and every other worker's
        last publication on the board (at most about half a second old)::

            {"engine": "asyncio", "pid": 1234, "workers": 2, "uptime_s": 12.5,
             "requests": 20, "errors": 0, "client_errors": 1, "in_flight": 1, "connections": 3,
             "routes": {"/plaintext": {..., "latency_ms": {"p50": 0.05, ..., "max": 0.2,
                                                         "samples": 18}}},
             "processes": [{"pid": 1234, "requests": 10, "errors": 0, "client_errors": 1,
                            "in_flight": 1, "connections": 2, "age_s": 0.0}, ...]}

        Counters and gauges are sums; route percentiles come from the merged histograms.
        """
        board = self._board
        now = time.time()
        mine = self.publication()
        lines = [(board.index, mine, 0.0)]
        for index, _pid, published, data in board.others():
            try:
                lines.append((index, json.loads(data), max(0.0, now - published)))
            except ValueError:
                continue
        processes = []
        for index, pub, age in sorted(lines, key=lambda x: x[0]):
            processes.append({"pid": pub["pid"], **{k: pub[k] for k in ("worker", "worker_kind", "ready_ms") if k in pub},
                              "requests": pub["requests"], "errors": pub["errors"],
                              "client_errors": pub["client_errors"], "in_flight": board.in_flight_of(index),
                              "connections": board.connections_of(index), "age_s": round(age, 3)})
        out_routes = _merged_routes([pub for _, pub, _ in lines])
        info = runtime.build_info()
        return {"engine": engine, "pid": os.getpid(), "workers": len(processes),
                "uptime_s": mine["uptime_s"], "gil": info["gil"], "python": info,
                "requests": sum(p["requests"] for p in processes),
                "errors": sum(p["errors"] for p in processes),
                "client_errors": sum(p["client_errors"] for p in processes),
                "in_flight": self.in_flight(), "connections": sum(p["connections"] for p in processes),
                "routes": out_routes, "processes": processes}


def _merged_routes(publications: list[dict]) -> dict:
    """Routes of one or more :meth:`Metrics.publication` s merged: counts summed, histograms
    merged, percentiles (ms) read from the merged histogram, capped at the exact max."""
    routes: dict[str, dict] = {}
    for pub in publications:
        for name, r in pub["routes"].items():
            m = routes.setdefault(name, {"requests": 0, "errors": 0, "client_errors": 0, "statuses": {},
                                         "max_ms": 0.0, "histogram": {}})
            for key in ("requests", "errors", "client_errors"):
                m[key] += r[key]
            for status, count in r["statuses"].items():
                m["statuses"][status] = m["statuses"].get(status, 0) + count
            m["max_ms"] = max(m["max_ms"], r["max_ms"])
            for bucket, count in r["histogram"].items():
                m["histogram"][int(bucket)] = m["histogram"].get(int(bucket), 0) + count
    out = {}
    for name in sorted(routes):
        m = routes[name]
        hist = m.pop("histogram")
        samples = sum(hist.values())
        if samples:
            # a bucket's upper edge may pass the exact max: no percentile above the max
            latency = {f"p{p}": min(m["max_ms"], round(histogram_percentile(hist, p), 3)) for p in (50, 95, 99)}
            latency["max"] = m["max_ms"]
        else:
            latency = {"p50": None, "p95": None, "p99": None, "max": None}
        latency["samples"] = samples
        del m["max_ms"]
        m["statuses"] = dict(sorted(m["statuses"].items(), key=lambda kv: int(kv[0])))
        m["latency_ms"] = latency
        out[name] = m
    return out
