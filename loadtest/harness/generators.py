"""The load generators the lab drives, each with one command builder and one parser, and the one
:class:`Result` every parser returns.

=========  ======================  ==========================================  ======================
generator  builder                 parser (what it reads)                      loop
=========  ======================  ==========================================  ======================
wrk        :func:`wrk_command`     :func:`parse_wrk` (its report; the          closed (HTTP/1.1)
                                   ``lab-wrk:`` line of :data:`WRK_LUA`)
h2load     :func:`h2load_command`  :func:`parse_h2load` (its report; its       closed (h2c, ``--h1``)
                                   ``--log-file`` for percentiles)
httperf    :func:`httperf_command` :func:`parse_httperf` (its report)          open (connections/s)
locust     :func:`locust_command`  :func:`parse_locust` (``PREFIX_stats.csv``; closed, or open with
                                   ``PREFIX_openloop.json`` when open loop)    ``--rate``
=========  ======================  ==========================================  ======================

:func:`pinned` is the one place a command is pinned to cores (``taskset``), :func:`run_tool` runs
one to completion. Units: latencies in milliseconds (float), rates in requests per second,
durations in seconds. Each tool's output format is its documented one (wrk's README and
``wrk.lua``'s ``done(summary, latency, requests)``; h2load(1) "OUTPUT" and ``--log-file``;
httperf(1) "OUTPUT"; locust's "Retrieve test statistics in CSV format").
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

__all__ = ["BenchError", "Result", "percentile", "parse_duration_ms", "pinned", "run_tool", "WRK_LUA",
           "wrk_command", "parse_wrk", "h2load_command", "parse_h2load", "httperf_command", "parse_httperf",
           "locust_command", "parse_locust", "remove_locust_csvs"]


class BenchError(Exception):
    """One server's run failed (did not start, wrong answer, tool failed); reported, not raised."""


@dataclass
class Result:
    """What one run of a load generator (or the lab's own probe) reported.

    ``requests``: answers counted in the window (None: the tool did not say); ``failures``:
    requests that got no HTTP answer (wrk's socket errors, h2load's errored requests, httperf's
    errors; locust's failure count, which also counts error statuses); ``non2xx``: answers with
    a status of 400 or more (wrk counts 4xx and 5xx as "Non-2xx or 3xx"); ``rps``: the tool's
    requests per second; ``*_ms``: latency percentiles, mean and maximum (ms, None where the tool
    gives none); ``duration_s``: the measured window (s); ``detail``: the tool's other figures.
    """

    rps: float = 0.0
    requests: int | None = None
    failures: int = 0
    non2xx: int = 0
    p50_ms: float | None = None
    p75_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    duration_s: float | None = None
    detail: dict = field(default_factory=dict)

    @classmethod
    def from_latencies(cls, latencies_ms: Sequence[float], elapsed_s: float, **detail: object) -> Result:
        """The lab's own probe (sequential requests): its latencies (ms, any order) over
        ``elapsed_s`` s -> nearest-rank percentiles, mean and maximum, rate = count / elapsed."""
        lat = sorted(latencies_ms)
        return cls(rps=len(lat) / elapsed_s if elapsed_s > 0 else 0.0, requests=len(lat),
                   p50_ms=_r(percentile(lat, 50)), p75_ms=_r(percentile(lat, 75)), p90_ms=_r(percentile(lat, 90)),
                   p95_ms=_r(percentile(lat, 95)), p99_ms=_r(percentile(lat, 99)), p999_ms=_r(percentile(lat, 99.9)),
                   max_ms=_r(lat[-1]) if lat else None, mean_ms=_r(sum(lat) / len(lat)) if lat else None,
                   duration_s=elapsed_s, detail=dict(detail))

    def only_2xx(self) -> Result:
        """The same run with ``rps`` counting only the answers below 400 (a 503 from a full queue
        is not throughput); the tool's own rate is kept in ``detail["rps_all"]``."""
        if not self.non2xx or not self.requests:
            return self
        share = (self.requests - self.non2xx) / self.requests
        return replace(self, rps=self.rps * share, detail={**self.detail, "rps_all": self.rps})


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100) of an ascending sequence; None when empty."""
    if not sorted_values:
        return None
    k = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(k, len(sorted_values)) - 1]


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(text: str) -> float:
    """``"1.23ms"``, ``"850.00us"``, ``"2.01s"`` (wrk / h2load notation) -> milliseconds.

    Raises:
        ValueError: not a duration.
    """
    m = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def pinned(cmd: list[str], cores: int | Sequence[int] | None) -> list[str]:
    """``cmd`` under ``taskset -c CORES`` (children inherit the affinity), or as is when ``cores``
    is None or empty: the one place a command is pinned."""
    if cores is None or (not isinstance(cores, int) and not cores):
        return cmd
    spec = str(cores) if isinstance(cores, int) else ",".join(map(str, cores))
    return ["taskset", "-c", spec, *cmd]


def run_tool(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Run a load tool to completion; returns (stdout + stderr, CPU seconds it used, wall s).

    Raises:
        BenchError: it ran past ``timeout`` s (it is killed), could not start, or exited non-zero
            without its report.
    """
    tool = next((c for c in cmd if c in ("wrk", "h2load", "httperf")), cmd[0])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{tool} ran past {timeout:.0f} s and was killed") from None
    except OSError as exc:
        raise BenchError(f"cannot run {cmd[0]}: {exc}") from None
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 and not any(s in out for s in ("Requests/sec", "finished in", "Request rate")):
        raise BenchError(f"{tool} exited {done.returncode}: {out.strip()[-300:]!r} (command: {' '.join(cmd)})")
    return out, cpu, wall


# -- wrk ---------------------------------------------------------------------------------------------

#: a wrk script whose ``done()`` prints the percentiles wrk's report leaves out (p95, p99.9, the
#: exact maximum; microseconds) and the error counts, on one ``lab-wrk:`` line
WRK_LUA = """-- written by loadtest/harness/generators.py: wrk's percentiles (microseconds) on one line
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("lab-wrk: requests=%d duration_us=%d socket_errors=%d status_errors=%d "
    .. "p50=%d p90=%d p95=%d p99=%d p999=%d max=%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def wrk_command(url: str, connections: int, duration_s: float, *, threads: int = 1, timeout_s: float = 10,
                latency: bool = True, script: str | None = None) -> list[str]:
    """``wrk -tT -cN -dDs [--latency] --timeout Xs [-s SCRIPT] URL``: the one wrk command line
    (closed loop: each connection sends its next request when the answer came)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", f"{timeout_s:g}s"]
    if latency:
        cmd.append("--latency")
    if script:
        cmd += ["-s", script]
    return [*cmd, url]


def parse_wrk(out: str) -> Result:
    """wrk's report (``--latency`` for the distribution) -> :class:`Result`; where the output has
    :data:`WRK_LUA`'s ``lab-wrk:`` line, its exact percentiles, maximum, window and counts win.
    ``detail``: ``socket_errors``, ``socket_error_detail`` (``"read 3, timeout 2"``).

    Raises:
        BenchError: no ``Requests/sec`` line (wrk failed).
    """
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    if not m:
        raise BenchError(f"no Requests/sec in wrk output: {out.strip()[-300:]!r}")
    res = Result(rps=float(m.group(1)), detail={"socket_errors": 0, "socket_error_detail": ""})
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+)", out, re.M)
    if m:
        res.requests, res.duration_s = int(m.group(1)), parse_duration_ms(m.group(2)) / 1000
    m = re.search(r"^\s*Latency\s+(\S+)\s+\S+\s+(\S+)", out, re.M)
    if m:
        with contextlib.suppress(ValueError):
            res.mean_ms, res.max_ms = parse_duration_ms(m.group(1)), parse_duration_ms(m.group(2))
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+([0-9.]+\w+)", out, re.M):
        setattr(res, f"p{pct}_ms", parse_duration_ms(value))
    m = re.search(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", out, re.M)
    if m:
        res.non2xx = int(m.group(1))
    m = re.search(r"^\s*Socket errors:\s*(.*)$", out, re.M)
    if m:
        counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(1))}
        res.failures = sum(counts.values())
        res.detail = {"socket_errors": res.failures,
                      "socket_error_detail": ", ".join(f"{k} {v}" for k, v in counts.items() if v)}
    line = next((ln for ln in out.splitlines() if ln.startswith("lab-wrk:")), None)
    if line is not None:
        kv = {k: int(v) for k, v in (item.split("=") for item in line.split(":", 1)[1].split())}
        res.requests, res.duration_s = kv["requests"], kv["duration_us"] / 1e6
        res.failures, res.non2xx = kv["socket_errors"], kv["status_errors"]
        for key in ("p50", "p90", "p95", "p99", "p999", "max"):
            setattr(res, f"{key}_ms", kv[key] / 1000.0)
    return res


# -- h2load ------------------------------------------------------------------------------------------

def h2load_command(url: str, clients: int, *, streams: int = 1, threads: int = 1, duration_s: float | None = None,
                   requests: int | None = None, warmup_s: float | None = None, timeout_s: float | None = None,
                   h1: bool = False, log_file: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """``h2load -cC -mM -tT [--h1] [-T X] [--log-file=F] (-n N | -D S [--warm-up-time=W]) URL``: the
    one h2load command line (h2c prior knowledge unless ``h1``; ``-m`` is the streams per client;
    ``log_file``: one line per request, for :func:`parse_h2load`'s percentiles)."""
    cmd = ["h2load", f"-c{clients}", f"-m{streams}", f"-t{threads}"]
    if h1:
        cmd.append("--h1")
    if timeout_s is not None:
        cmd.append(f"-T{timeout_s:g}")
    if log_file:
        cmd.append(f"--log-file={log_file}")
    cmd += list(extra)
    if requests:
        cmd.append(f"-n{requests}")
    elif duration_s is not None:
        cmd.append(f"-D{duration_s:g}")
        if warmup_s:
            cmd.append(f"--warm-up-time={warmup_s:g}")
    return [*cmd, url]


def parse_h2load(out: str, log_file: str | None = None) -> Result:
    """h2load's report -> :class:`Result` (``rps``, ``requests`` done, ``failures`` = errored,
    ``non2xx`` = 4xx + 5xx, ``mean_ms`` and ``max_ms`` of "time for request"); h2load prints no
    percentiles: with ``log_file`` (its ``--log-file``: tab-separated start time µs, status,
    response time µs) they are the nearest-rank percentiles of every logged request.
    ``detail``: ``succeeded``, ``failed``, ``errored``, ``timeout``, ``logged``.

    Raises:
        BenchError: no ``finished in`` line (h2load failed).
    """
    m = re.search(r"^finished in ([0-9.]+\w+), ([0-9.]+) req/s", out, re.M)
    if not m:
        raise BenchError(f"no 'finished in' line in h2load output: {out.strip()[-300:]!r}")
    res = Result(rps=float(m.group(2)), duration_s=parse_duration_ms(m.group(1)) / 1000)
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out, re.M)
    if m:
        _, _, done, ok, failed, errored, timeout = map(int, m.groups())
        res.requests, res.failures = done, errored
        res.detail.update(succeeded=ok, failed=failed, errored=errored, timeout=timeout)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    if m:
        res.non2xx = sum(map(int, m.groups()[2:]))
    m = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        res.max_ms, res.mean_ms = parse_duration_ms(m.group(2)), parse_duration_ms(m.group(3))
    if log_file:
        times: list[float] = []
        with contextlib.suppress(OSError), open(log_file) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    with contextlib.suppress(ValueError):
                        times.append(int(parts[2]) / 1000.0)
        times.sort()
        for key, pct in (("p50", 50), ("p75", 75), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)):
            setattr(res, f"{key}_ms", percentile(times, pct))
        if times:
            res.max_ms = times[-1]
        res.detail["logged"] = len(times)
    return res


# -- httperf -----------------------------------------------------------------------------------------

def httperf_command(host: str, port: int, uri: str, rate: float, connections: int, *, calls: int = 1,
                    timeout_s: float = 5) -> list[str]:
    """``httperf --hog --server H --port P --uri U --rate R --num-conns N --num-calls C --timeout T``:
    the one httperf command line (open loop: ``rate`` new connections per second, each sending
    ``calls`` requests, whether or not the earlier ones were answered)."""
    return ["httperf", "--hog", "--server", host, "--port", str(port), "--uri", uri, "--rate", f"{rate:g}",
            "--num-conns", str(connections), "--num-calls", str(calls), "--timeout", f"{timeout_s:g}"]


def parse_httperf(out: str) -> Result:
    """httperf's report -> :class:`Result` (``rps`` = "Request rate", ``requests`` = replies,
    ``failures`` = "Errors: total", ``non2xx`` = 4xx + 5xx replies, ``mean_ms`` = "Reply time"
    response + transfer, ``duration_s`` = test-duration); httperf prints no percentiles.
    ``detail``: ``connection_rate`` (connections/s).

    Raises:
        BenchError: no ``Request rate`` line (httperf failed).
    """
    m = re.search(r"^Request rate: ([0-9.]+) req/s", out, re.M)
    if not m:
        raise BenchError(f"no 'Request rate' line in httperf output: {out.strip()[-300:]!r}")
    res = Result(rps=float(m.group(1)))
    m = re.search(r"^Total: connections (\d+) requests (\d+) replies (\d+) test-duration ([0-9.]+) s", out, re.M)
    if m:
        res.requests, res.duration_s = int(m.group(3)), float(m.group(4))
    m = re.search(r"^Errors: total (\d+)", out, re.M)
    if m:
        res.failures = int(m.group(1))
    m = re.search(r"^Reply status: 1xx=(\d+) 2xx=(\d+) 3xx=(\d+) 4xx=(\d+) 5xx=(\d+)", out, re.M)
    if m:
        res.non2xx = int(m.group(4)) + int(m.group(5))
    m = re.search(r"^Reply time \[ms\]: response ([0-9.]+) transfer ([0-9.]+)", out, re.M)
    if m:
        res.mean_ms = float(m.group(1)) + float(m.group(2))
    m = re.search(r"^Connection rate: ([0-9.]+) conn/s", out, re.M)
    if m:
        res.detail["connection_rate"] = float(m.group(1))
    return res


# -- locust ------------------------------------------------------------------------------------------

def locust_command(userfile: str, host: str, users: int, spawn_rate: float, run_time_s: float, csv_prefix: str,
                   *, processes: int | None = None, extra: Sequence[str] = ()) -> list[str]:
    """``python -m locust -f USERFILE --headless -u N -r R -t Ts --host H --csv PREFIX --only-summary
    --loglevel WARNING [--processes P] EXTRA``: the one locust command line (``userfile`` a path;
    the lab's users add ``--workload``, ``--warmup-s``, ``--measure-s``, ``--rate``, ``--h2-streams``
    through ``extra``)."""
    cmd = [sys.executable, "-m", "locust", "-f", userfile, "--headless", "-u", str(users), "-r", f"{spawn_rate:g}",
           "-t", f"{math.ceil(run_time_s)}s", "--host", host, "--csv", csv_prefix, "--only-summary",
           "--loglevel", "WARNING"]
    if processes and processes > 1:
        cmd += ["--processes", str(processes)]
    return [*cmd, *extra]


def _num(text: str | None) -> float | None:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def parse_locust(csv_prefix: str) -> Result:
    """A locust run's outputs -> :class:`Result`. An open-loop run of the lab's users (``--rate``;
    ``PREFIX_openloop.json`` of loadtest/users/openloop.py says ``"mode": "open"``): the achieved
    rate and the exact percentiles of the merged HdrHistogram, from the intended send times;
    ``detail`` is that whole summary (``offered_rps``, ``late``, ...). Otherwise (closed loop, or
    any locustfile) the ``Aggregated`` row of locust's ``PREFIX_stats.csv`` (``None`` where locust
    wrote N/A; its percentiles are rounded to two significant digits).

    Raises:
        BenchError: neither file, or no Aggregated row.
    """
    s: dict = {}
    with contextlib.suppress(OSError, ValueError), open(f"{csv_prefix}_openloop.json") as f:
        s = json.load(f)
    if s.get("mode") == "open":
        return Result(rps=s.get("achieved_rps") or 0.0, requests=s.get("requests"), p50_ms=s.get("p50_ms"),
                      p90_ms=s.get("p90_ms"), p99_ms=s.get("p99_ms"), p999_ms=s.get("p999_ms"),
                      max_ms=s.get("max_ms"), duration_s=s.get("window_s"), detail=s)
    path = f"{csv_prefix}_stats.csv"
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    except OSError as exc:
        raise BenchError(f"locust wrote no statistics ({exc})") from None
    if not rows:
        raise BenchError(f"no Aggregated row in {path}")
    r = rows[0]
    return Result(requests=int(r["Request Count"]), failures=int(r["Failure Count"]),
                  rps=_num(r["Requests/s"]) or 0.0, p50_ms=_num(r["50%"]), p75_ms=_num(r.get("75%")),
                  p90_ms=_num(r["90%"]), p95_ms=_num(r["95%"]), p99_ms=_num(r["99%"]), p999_ms=_num(r["99.9%"]),
                  max_ms=_num(r["Max Response Time"]), mean_ms=_num(r.get("Average Response Time")))


def remove_locust_csvs(csv_prefix: str) -> None:
    """Delete locust's own CSVs of a run whose figures were kept elsewhere (the row, the .hdr)."""
    for suffix in ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(csv_prefix + suffix)
