"""What every experiment shares: the row schema, the configuration, the servers and wrk."""

from __future__ import annotations

import http.client
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

from .servers import HOST, ROOT, RunningServer, ServerSpec
from .tools import parse_wrk, run_tool

ENGINES = ("threadpool", "processpool", "selectors", "asyncio")
COLUMNS = ["experiment", "engine", "protocol", "workload", "users", "duration_s", "requests", "rps",
           "p50_ms", "p99_ms", "max_ms", "server_cpus", "server_cpu_us_per_req", "law", "expected",
           "held", "note", "git_rev", "python", "cpu"]
#: threadpool's worker threads in these experiments (its default, 32)
THREADPOOL_WORKERS = 32


@dataclass
class Config:
    """What an experiment needs: which engines, how long, where the server and generator run."""

    engines: tuple[str, ...]
    quick: bool
    duration: float
    results: str
    log_dir: str
    machine: dict


def _workers(engine: str) -> int | None:
    """The concurrency limit L of ``engine`` for waits (None: unbounded)."""
    if engine == "threadpool":
        return THREADPOOL_WORKERS
    if engine == "processpool":
        return os.cpu_count() or 2
    return None


def _spec(engine: str, extra: tuple[str, ...] = ()) -> ServerSpec:
    workers = _workers(engine)
    option = "--threads" if engine == "threadpool" else "--workers"  # the pool's size; processes
    args = [option, str(workers)] if workers is not None else []
    return ServerSpec(name=engine, kind="engine", argv=lambda port: [
        sys.executable, os.path.join(ROOT, "start_server"), "--engine", engine, "--port", str(port),
        "--log-level", "WARNING", "--max-connections", "20000", *args, *extra])


def _wrk(port: int, path: str, connections: int, duration: float, cores: list[int] | None) -> dict:
    """wrk -t1 -c N against ``path``: ``parse_wrk``'s figures, ``rps`` counting only 2xx/3xx answers
    (``rps_all``: every answer, when some were not)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s", "--latency",
           f"http://{HOST}:{port}{path}"]
    if cores:
        cmd = ["taskset", "-c", ",".join(map(str, cores)), *cmd]
    out, _, _ = run_tool(cmd, timeout=duration + 60)
    result = parse_wrk(out)
    # wrk counts every answer; a 503 (a full queue, too many connections) is not throughput
    if result.get("non2xx") and result.get("requests"):
        result["rps_all"] = result["rps"]
        result["rps"] = result["rps"] * (result["requests"] - result["non2xx"]) / result["requests"]
    return result


def _row(cfg: Config, experiment: str, engine: str, workload: str, users: int, result: dict,
         server_cpu_s: float | None, server_cpus: int, law: str, expected: str, held: bool | None, note: str = "",
         protocol: str = "h1", duration: float | None = None) -> dict:
    """One row of COLUMNS (``result``: ``{requests, rps, p50_ms, p99_ms, max_ms}``)."""
    requests = result.get("requests") or 0
    if result.get("non2xx"):
        note = "; ".join(x for x in (note, f"{result['non2xx']} of {requests} answers were not 2xx (not counted "
                                            f"in rps; {result.get('rps_all', 0):.0f} req/s with them)") if x)
    return {"experiment": experiment, "engine": engine, "protocol": protocol, "workload": workload, "users": users,
            "duration_s": cfg.duration if duration is None else duration, "requests": requests, "rps": round(result.get("rps", 0.0), 1),
            "p50_ms": result.get("p50_ms"), "p99_ms": result.get("p99_ms"), "max_ms": result.get("max_ms"),
            "server_cpus": server_cpus,
            "server_cpu_us_per_req": round(server_cpu_s / requests * 1e6, 1) if requests and server_cpu_s else None,
            "law": law, "expected": expected, "held": "" if held is None else ("yes" if held else "NO"),
            "note": note, "git_rev": cfg.machine["git"], "python": cfg.machine["python"], "cpu": cfg.machine["cpu"]}


def _measured(server: RunningServer, fn: Callable[[], dict]) -> tuple[dict, float]:
    before = server.cpu_seconds()
    result = fn()
    return result, server.cpu_seconds() - before


def _probe_path(port: int, path: str, count: int) -> list[float]:
    """``count`` sequential GETs of ``path`` on one keep-alive connection: latencies (ms)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    out = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out
