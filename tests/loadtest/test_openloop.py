"""Open-loop load (``--rate``) in the locust users, and the HdrHistogram merged across processes.

Unit tests: the schedule sends R per second (fixed and Poisson); a merged histogram has exactly
the percentiles of all values. Runs (slow): the HTTP/2 user at 200 requests/s keeps the rate
through a 1 s stall of the selectors engine (SIGSTOP/SIGCONT of the server this test started),
and the stall shows in p99 and in the request count; the HTTP/1.1 user over two locust processes
reaches the offered rate, with locust's count equal to the merged histogram's; httperf, an
independent open-loop generator, reaches the same rate on the same route.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading

import pytest

from loadtest.users.openloop import Recorder, Schedule
from loadtest.harness.generators import httperf_command, locust_command, parse_httperf
from loadtest.harness.servers import HOST, ROOT, ServerSpec, running

RATE = 200.0


# -- schedule ---------------------------------------------------------------------------------------

def test_fixed_schedule_sends_the_rate():
    s = Schedule(50.0, start=0.0, rng=random.Random(1))
    times = s.due(10.0)
    assert len(times) in (499, 500, 501)
    assert all(b - a == pytest.approx(0.02) for a, b in zip(times, times[1:]))
    assert s.due(10.0) == []  # each intended time is handed out once


def test_poisson_schedule_has_the_mean_rate():
    s = Schedule(100.0, poisson=True, start=0.0, rng=random.Random(7))
    n = len(s.due(200.0))
    assert n == pytest.approx(20_000, rel=0.03)


def test_schedule_needs_a_rate():
    with pytest.raises(ValueError):
        Schedule(0.0)


# -- histogram merge --------------------------------------------------------------------------------

def test_merged_histogram_is_exact_not_an_average():
    rng = random.Random(3)
    fast = [rng.uniform(0.1, 2.0) for _ in range(9_000)]  # ms
    slow = [rng.uniform(500.0, 1000.0) for _ in range(1_000)]
    a, b, both = Recorder(), Recorder(), Recorder()
    for v in fast:
        a.record(v)
        both.record(v)
    for v in slow:
        b.record(v)
        both.record(v)
    a.late, b.late = 3, 4
    b.peak(connections=7)
    master = Recorder()
    master.merge(a.delta())
    master.merge(b.delta())
    assert a.histogram.get_total_count() == 0  # a delta resets what it sent
    for p in (50, 90, 99, 99.9, 100):
        assert master.histogram.get_value_at_percentile(p) == both.histogram.get_value_at_percentile(p)
    # the average of the two processes' p99 would be far below the true p99 (in the slow tail)
    assert master.histogram.get_value_at_percentile(99) > 500_000
    assert master.late == 7 and master.peak_connections == 7


# -- runs -------------------------------------------------------------------------------------------

def _spec(engine: str) -> ServerSpec:
    return ServerSpec(name=engine, kind="engine", argv=lambda port: [
        sys.executable, os.path.join(ROOT, "start_server"), "--engine", engine, "--port", str(port),
        "--log-level", "WARNING"])


def _locust(userfile: str, port: int, prefix: str, seconds: int, *extra: str) -> dict:
    cmd = locust_command(os.path.join(ROOT, "loadtest", userfile), f"http://{HOST}:{port}", 4, 4, seconds, prefix,
                         extra=["--workload", "plaintext", "--rate", str(RATE), "--warmup-s", "1", *extra])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(f"{prefix}_openloop.json") as f:
        return json.load(f)


def _locust_aggregated(prefix: str) -> dict:
    with open(f"{prefix}_stats.csv") as f:
        header, *rows = [line.rstrip("\n").split(",") for line in f]
    row = dict(zip(header, [r for r in rows if r[1] == "Aggregated"][0]))
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "p99_ms": float(row["99%"])}


@pytest.mark.slow
def test_h2user_open_loop_sees_a_stall(tmp_path):
    """A 1 s stall of the server: the open loop keeps sending, so the requests it delayed all
    show it (p99 near a second) and the count stays at the offered rate, where a closed loop
    would have sent nothing for that second."""
    with running(_spec("selectors"), None, str(tmp_path), dict(os.environ), 30) as server:
        def stall() -> None:
            os.kill(server.proc.pid, signal.SIGSTOP)
            resume.wait(1.0)  # the stall itself lasts a second
            os.kill(server.proc.pid, signal.SIGCONT)
        resume = threading.Event()
        timer = threading.Timer(3.0, stall)
        timer.start()
        try:
            summary = _locust("h2user.py", server.port, str(tmp_path / "h2"), 9)
        finally:
            timer.cancel()
            resume.set()
            os.kill(server.proc.pid, signal.SIGCONT)
    stats = _locust_aggregated(str(tmp_path / "h2"))
    assert summary["mode"] == "open" and summary["offered_rps"] == RATE
    assert stats["failures"] == 0
    assert stats["requests"] == summary["requests"]  # locust's own count is the histogram's
    assert summary["achieved_rps"] == pytest.approx(RATE, rel=0.05)
    # about 200 requests were due during the stall, 1 in 8 of the run: p99 is inside it
    assert summary["p99_ms"] >= 700 and stats["p99_ms"] >= 700
    assert summary["max_ms"] >= 900
    assert summary["peak_streams"] >= 20  # the stalled requests were in flight together


@pytest.mark.slow
def test_h1user_open_loop_two_processes_reaches_the_rate(tmp_path):
    with running(_spec("asyncio"), None, str(tmp_path), dict(os.environ), 30) as server:
        summary = _locust("h1user.py", server.port, str(tmp_path / "h1"), 7, "--processes", "2")
        httperf = _httperf(server.port, RATE, 5)
    stats = _locust_aggregated(str(tmp_path / "h1"))
    assert stats["failures"] == 0
    assert stats["requests"] == summary["requests"]  # merged exactly across the two processes
    assert summary["achieved_rps"] == pytest.approx(RATE, rel=0.05)
    assert 1 <= summary["peak_connections"] <= 256
    # httperf, an independent open-loop generator, at the same rate on the same route
    assert httperf == pytest.approx(RATE, rel=0.05)
    assert summary["achieved_rps"] == pytest.approx(httperf, rel=0.05)


def _httperf(port: int, rate: float, seconds: int) -> float:
    """httperf's achieved request rate (req/s) at ``rate`` new connections/s, one request each."""
    cmd = httperf_command(HOST, port, "/plaintext", rate, int(rate * seconds))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    result = parse_httperf(out)
    assert result.failures == 0 and result.non2xx == 0, out
    return result.rps
