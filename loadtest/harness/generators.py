"""The load generators the bench drives, wrk (HTTP/1.1) and h2load (HTTP/2): run one, parse its report.

All latencies are milliseconds (float); rates are requests per second.
"""

from __future__ import annotations

import re
import resource
import subprocess
import time
from typing import Sequence

__all__ = ["BenchError", "parse_duration_ms", "parse_wrk", "parse_h2load", "run_tool", "pinned", "wrk_command",
           "h2load_command"]


def pinned(cmd: list[str], cores: int | Sequence[int] | None) -> list[str]:
    """``cmd`` under ``taskset -c CORES`` (children inherit the affinity), or as is when ``cores``
    is None or empty: the one place a command is pinned."""
    if cores is None or (not isinstance(cores, int) and not cores):
        return cmd
    spec = str(cores) if isinstance(cores, int) else ",".join(map(str, cores))
    return ["taskset", "-c", spec, *cmd]


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


def h2load_command(url: str, clients: int, *, streams: int = 1, threads: int = 1, duration_s: float | None = None,
                   requests: int | None = None, warmup_s: float | None = None, timeout_s: float | None = None,
                   h1: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """``h2load -cC -mM -tT (-D S | -n N) [--warm-up-time=W] [-T X] [--h1] URL``: the one h2load
    command line (h2c prior knowledge unless ``h1``; ``-m`` is the streams per client)."""
    cmd = ["h2load", f"-c{clients}", f"-m{streams}", f"-t{threads}"]
    if h1:
        cmd.append("--h1")
    if timeout_s is not None:
        cmd.append(f"-T{timeout_s:g}")
    cmd += list(extra)
    if requests:
        cmd.append(f"-n{requests}")
    elif duration_s is not None:
        cmd.append(f"-D{duration_s:g}")
        if warmup_s:
            cmd.append(f"--warm-up-time={warmup_s:g}")
    return [*cmd, url]


class BenchError(Exception):
    """One server's run failed (did not start, wrong answer, tool failed); reported, not raised."""


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


def parse_wrk(out: str) -> dict:
    """wrk's report (with ``--latency``) -> ``{rps, requests, p50_ms, p75_ms, p90_ms, p99_ms,
    non2xx, socket_errors, socket_error_detail}``.

    Raises:
        BenchError: no ``Requests/sec`` line (wrk failed).
    """
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    if not m:
        raise BenchError(f"no Requests/sec in wrk output: {out.strip()[-300:]!r}")
    result: dict = {"rps": float(m.group(1)), "non2xx": 0, "socket_errors": 0, "socket_error_detail": ""}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+)", out, re.M)
    result["requests"] = int(m.group(1)) if m else None
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+([0-9.]+\w+)", out, re.M):
        result[f"p{pct}_ms"] = parse_duration_ms(value)
    m = re.search(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", out, re.M)
    if m:
        result["non2xx"] = int(m.group(1))
    m = re.search(r"^\s*Socket errors:\s*(.*)$", out, re.M)
    if m:
        counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(1))}
        result["socket_errors"] = sum(counts.values())
        result["socket_error_detail"] = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    return result


def parse_h2load(out: str) -> dict:
    """h2load's report -> ``{rps, requests, succeeded, failed, errored, timeout, non2xx,
    mean_ms, max_ms}`` (h2load prints no percentiles).

    Raises:
        BenchError: no ``finished in`` line (h2load failed).
    """
    m = re.search(r"^finished in ([0-9.]+\w+), ([0-9.]+) req/s", out, re.M)
    if not m:
        raise BenchError(f"no 'finished in' line in h2load output: {out.strip()[-300:]!r}")
    result: dict = {"rps": float(m.group(2))}
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out, re.M)
    if m:
        total, _, done, ok, failed, errored, timeout = map(int, m.groups())
        result.update(requests=done, succeeded=ok, failed=failed, errored=errored, timeout=timeout)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    if m:
        result["non2xx"] = sum(map(int, m.groups()[2:]))
    m = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        result["max_ms"] = parse_duration_ms(m.group(2))
        result["mean_ms"] = parse_duration_ms(m.group(3))
    return result


def run_tool(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Run a load tool to completion; returns (stdout + stderr, CPU seconds it used, wall s).

    Raises:
        BenchError: it ran past ``timeout`` s (it is killed) or could not start.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        tool = next((c for c in cmd if c in ("wrk", "h2load")), cmd[0])
        raise BenchError(f"{tool} ran past {timeout:.0f} s and was killed") from None
    except OSError as exc:
        raise BenchError(f"cannot run {cmd[0]}: {exc}") from None
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 and "Requests/sec" not in out and "finished in" not in out:
        raise BenchError(f"{cmd} exited {done.returncode}: {out.strip()[-300:]!r}")
    return out, cpu, wall
