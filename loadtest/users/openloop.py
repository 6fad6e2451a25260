"""Open-loop load and exact latency percentiles for the lab's locust users.

Open loop (``--rate R``): requests are sent on a schedule of R requests/s in total, spread evenly
over the users (each user sends ``R / -u`` per second), at fixed intervals or with exponential
interarrival times (``--arrival poisson``: the users' merged stream is then a Poisson process). A
request's latency is measured from its **intended** send time, not from when it was written, so a
server that stalls for a second shows that second in every request it delayed, not in one: the
correction for coordinated omission (Gil Tene, "How NOT to measure latency", 2013; wrk2 does the
same). A request that could not be sent at its intended time (no free connection or stream, or the
generator itself ran behind by more than :data:`LATE_S`) is still sent and still measured from its
intended time, and is counted as *late*: never silently dropped. Without ``--rate`` the users stay
the closed loop they were (one request after another per slot); latency then runs from the write.

Exact percentiles: every response time the users report (locust's ``request`` event, in both
modes) also goes into an HdrHistogram (Gil Tene's; ``hdrhistogram`` from PyPI; 1 µs .. 1 h, 3
significant digits, values in µs). In a distributed run (``--processes N``, master and workers)
each worker sends what it recorded since its last report, encoded, with locust's own periodic and
final stats report (``events.report_to_master``), and the master adds it to its histogram: the
percentiles are those of all requests, never an average of per-process percentiles. (The final
report is the one locust itself sends after ``quit``; a custom message sent from ``test_stop``
would race the master's exit. A custom message, ``lab_openloop_reset``, tells the workers when the
warm-up ends.)

With ``--csv PREFIX`` the run writes, next to locust's CSVs:

- ``PREFIX_latency.hdr``: the merged histogram in HdrHistogram's log format (one interval);
- ``PREFIX_latency.txt``: its percentile distribution (HdrHistogram's text format, values in ms);
- ``PREFIX_openloop.json``: :meth:`Recorder.summary` (offered and achieved rate, late, peaks).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

__all__ = ["LATE_S", "Schedule", "Recorder", "RECORDER", "add_arguments", "rate_per_user", "write_outputs"]

#: a request sent more than this long (s) after its intended send time counts as late
LATE_S = 0.010
HIGHEST_US = 3_600_000_000  # 1 h
SIGNIFICANT_DIGITS = 3


def add_arguments(parser: Any) -> None:
    """Add ``--rate``, ``--arrival`` and ``--h1-connections`` to locust's argument parser."""
    parser.add_argument("--rate", type=float, default=0.0, include_in_web_ui=True,
                        help="open loop: requests/s in total over all users (default 0: closed loop)")
    parser.add_argument("--arrival", choices=("fixed", "poisson"), default="fixed", include_in_web_ui=True,
                        help="open loop: fixed intervals or exponential interarrival times (default: fixed)")
    parser.add_argument("--h1-connections", type=int, default=256, include_in_web_ui=False,
                        help="open loop, HTTP/1.1 user: at most this many connections per user (default 256)")


def rate_per_user(environment: Any) -> float:
    """The open-loop rate one user sends (requests/s): ``--rate`` over ``-u`` users; 0: closed loop."""
    options = environment.parsed_options
    rate = float(getattr(options, "rate", 0.0) or 0.0) if options is not None else 0.0
    if rate <= 0:
        return 0.0
    users = int(getattr(options, "num_users", 0) or 0) or 1
    return rate / users


class Schedule:
    """One user's intended send times (``time.perf_counter`` seconds).

    Args:
        rate: requests/s this user sends (> 0). poisson: exponential interarrival times (mean
            ``1 / rate``) instead of fixed ones. start: the first time; a fixed schedule starts at
            a random phase within one interval, so users do not all send at once.
    """

    __slots__ = ("interval", "poisson", "next", "rng")

    def __init__(self, rate: float, poisson: bool = False, start: float | None = None,
                 rng: random.Random | None = None) -> None:
        if rate <= 0:
            raise ValueError("an open-loop schedule needs a rate > 0")
        self.interval = 1.0 / rate
        self.poisson = poisson
        self.rng = rng or random.Random()
        now = time.perf_counter() if start is None else start
        self.next = now + (self.rng.expovariate(rate) if poisson else self.rng.random() * self.interval)

    def due(self, now: float) -> list[float]:
        """The intended send times up to ``now``, in order (each returned once)."""
        out = []
        while self.next <= now:
            out.append(self.next)
            self.next += self.rng.expovariate(1.0 / self.interval) if self.poisson else self.interval
        return out


class Recorder:
    """Response times in an HdrHistogram (µs) plus the open-loop counters, for one process, or
    merged from every worker on the master. ``record`` takes ms (locust's unit)."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.late = 0
        self.peak_connections = 0
        self.peak_streams = 0
        self.window_start: float | None = None
        self.window_end: float | None = None

    def record(self, response_time_ms: float) -> None:
        """One response time, ms (clamped to 1 µs .. 1 h)."""
        self.histogram.record_value(min(HIGHEST_US, max(1, int(response_time_ms * 1000.0))))

    def peak(self, connections: int = 0, streams: int = 0) -> None:
        """A user now holds ``connections`` connections or ``streams`` streams in flight."""
        if connections > self.peak_connections:
            self.peak_connections = connections
        if streams > self.peak_streams:
            self.peak_streams = streams

    def reset(self) -> None:
        """Forget what was recorded (the warm-up ended)."""
        self.histogram.reset()
        self.late = self.peak_connections = self.peak_streams = 0

    def delta(self) -> dict:
        """What was recorded since the last delta, encoded for a worker's report; then reset."""
        out = {"hdr": self.histogram.encode().decode("ascii") if self.histogram.get_total_count() else "",
               "late": self.late, "peak_connections": self.peak_connections, "peak_streams": self.peak_streams}
        self.reset()
        return out

    def merge(self, delta: dict | None) -> None:
        """Add a worker's :meth:`delta` (the master's side)."""
        if not delta:
            return
        if delta.get("hdr"):
            self.histogram.add(HdrHistogram.decode(delta["hdr"].encode("ascii")))
        self.late += int(delta.get("late", 0))
        self.peak(int(delta.get("peak_connections", 0)), int(delta.get("peak_streams", 0)))

    def summary(self, offered_rps: float, arrival: str) -> dict:
        """``{mode, offered_rps, achieved_rps, requests, late, window_s, p50_ms, p90_ms, p99_ms,
        p999_ms, p9999_ms, max_ms, peak_connections, peak_streams}``: the measured window
        (from the warm-up's end to the stop), exact percentiles of the merged histogram (ms)."""
        h = self.histogram
        count = h.get_total_count()
        start, end = self.window_start, self.window_end or time.time()
        window = max(1e-9, end - start) if start is not None else None

        def ms(p: float) -> float | None:
            return round(h.get_value_at_percentile(p) / 1000.0, 3) if count else None

        return {"mode": "open" if offered_rps > 0 else "closed", "arrival": arrival if offered_rps > 0 else None,
                "offered_rps": offered_rps or None,
                "achieved_rps": round(count / window, 2) if window else None, "requests": count,
                "late": self.late, "window_s": round(window, 3) if window else None,
                "p50_ms": ms(50), "p90_ms": ms(90), "p99_ms": ms(99), "p999_ms": ms(99.9), "p9999_ms": ms(99.99),
                "max_ms": round(h.get_max_value() / 1000.0, 3) if count else None,
                "peak_connections": self.peak_connections, "peak_streams": self.peak_streams}


#: this process's recorder (each locust process has its own; the master's holds the merge)
RECORDER = Recorder()


def write_outputs(prefix: str, recorder: Recorder, offered_rps: float, arrival: str) -> dict:
    """Write ``PREFIX_latency.hdr``, ``PREFIX_latency.txt`` and ``PREFIX_openloop.json`` (module
    docstring); returns the summary."""
    summary = recorder.summary(offered_rps, arrival)
    with open(f"{prefix}_openloop.json", "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    start = recorder.window_start if recorder.window_start is not None else time.time()
    end = recorder.window_end if recorder.window_end is not None else time.time()
    with open(f"{prefix}_latency.hdr", "w") as f:
        writer = HistogramLogWriter(f)
        writer.output_comment("lab locust users' response times, values in microseconds")
        f.write(f"#[StartTime: {start:.3f} (seconds since epoch)]\n")  # (hdrh's output_start_time fails)
        writer.output_legend()
        writer.output_interval_histogram(recorder.histogram, start, end, 1.0)
    with open(f"{prefix}_latency.txt", "wb") as f:  # (hdrh writes bytes)
        recorder.histogram.output_percentile_distribution(f, 1000.0)
    return summary
