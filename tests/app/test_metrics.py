"""Metrics: counts by route, errors (>= 500) and client errors (4xx), percentiles, the JSON shape."""

from __future__ import annotations

import json
import os
import threading

import pytest

from app import Metrics
from app.metrics import MAX_ROUTES, percentile


def test_snapshot_shape():
    m = Metrics()
    for i in range(100):
        m.observe("/plaintext", 200, (i + 1) / 1000)
    m.observe("/plaintext", 404, 0.5)
    m.observe("/bug", 500, 0.002)
    snap = m.snapshot("selectors")
    json.dumps(snap)  # JSON-ready
    assert snap["engine"] == "selectors" and snap["pid"] == os.getpid()
    assert (snap["requests"], snap["errors"], snap["client_errors"]) == (102, 1, 1)
    route = snap["routes"]["/plaintext"]
    assert route["requests"] == 101 and route["errors"] == 0 and route["client_errors"] == 1
    assert route["statuses"] == {"200": 100, "404": 1}
    lat = route["latency_ms"]
    # nearest-rank truths 51, 96, 100 ms; a histogram bucket's upper edge is at most 4.4 % above
    for p, true in (("p50", 51.0), ("p95", 96.0), ("p99", 100.0)):
        assert true <= lat[p] <= true * 1.044, (p, lat[p])
    assert lat["max"] == 500.0 and lat["samples"] == 101
    assert snap["gil"] in ("enabled", "disabled") and snap["python"]["gil"] == snap["gil"]
    assert snap["routes"]["/bug"]["errors"] == 1


def test_empty():
    snap = Metrics().snapshot("x")
    assert snap["routes"] == {} and snap["requests"] == 0


def test_every_duration_is_counted_in_bounded_memory():
    """100,000 durations from 1 µs to 100 s: ``samples`` counts all of them, in at most 16
    buckets per doubling (27 doublings: under 450 buckets), and p50 is within 4.4 % of the truth."""
    m = Metrics()
    n = 100_000
    for i in range(n):
        m.observe("/r", 200, 1e-6 * (1e8 ** (i / (n - 1))))
    route = m.snapshot("x")["routes"]["/r"]
    assert route["requests"] == n and route["latency_ms"]["samples"] == n
    assert len(m._routes["/r"].histogram) < 450
    true_p50 = 1e-3 * (1e8 ** ((n // 2 - 1) / (n - 1)))  # ms
    assert true_p50 <= route["latency_ms"]["p50"] <= true_p50 * 1.044


def test_route_names_are_bounded():
    m = Metrics()
    for i in range(MAX_ROUTES + 50):
        m.observe(f"/r{i}", 200, 0.0)
    snap = m.snapshot("x")
    assert len(snap["routes"]) == MAX_ROUTES + 1 and snap["routes"]["(other)"]["requests"] == 50


def test_threads():
    m = Metrics()

    def work():
        for _ in range(2000):
            m.observe("/t", 200, 0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.snapshot("x")["routes"]["/t"]["requests"] == 16000


def test_reset():
    m = Metrics()
    m.observe("/a", 200, 0.1)
    m.reset()
    assert m.snapshot("x")["requests"] == 0


def test_percentile():
    assert percentile([1.0], 50) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_observations_are_folded_in_bounded_batches():
    m = Metrics()
    for i in range(Metrics.FOLD_AT * 3 + 5):
        m.observe("/a", 200 if i % 2 else 503, 0.001)
        assert len(m._log) < Metrics.FOLD_AT  # queued observations never outgrow one batch
    snap = m.snapshot("x")
    assert snap["requests"] == Metrics.FOLD_AT * 3 + 5 and snap["errors"] == (Metrics.FOLD_AT * 3 + 5 + 1) // 2
    assert len(m._log) == 0


def test_in_flight_gauge_with_and_without_shared_slots():
    import multiprocessing

    m = Metrics()
    m.begin()
    m.begin()
    m.end()
    assert m.in_flight() == 1
    slots = multiprocessing.RawArray("i", 2)
    slots[0] = 5  # the other worker's handlers
    m.share_in_flight(slots, 1)
    m.begin()
    assert m.in_flight() == 6 and slots[1] == 1
    m.end()
    assert m.in_flight() == 5 and slots[1] == 0
