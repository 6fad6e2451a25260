"""Experiments: each one question about the concurrency models, the law its numbers must obey,
and rows in results/experiments/NAME.csv.

Usage::

    python -m loadtest experiment NAME [--quick] [--engines LIST] [--results DIR]
    python -m loadtest experiment all --quick

The seven questions (``all`` runs them in this order; ``cost``, ``multiplex``: loadtest/
experiment_cost.py; ``latency``, ``connections``: loadtest/experiment_latency.py):

``cost``          What does each model's machinery cost per request (and against the peers)?
``wait``          How many waits can each model hold? ``/io?ms=100`` from wrk with N connections
                  (one request in flight each). Law (Little's, L = concurrency served at once):
                  X = min(N, L) / 0.1 s, L = ``--workers`` for threadpool and processpool,
                  unbounded for the loops. A row more than 10 % off the law is flagged.
``cores``         Who uses more than one core for CPU work? ``/cpu`` (a few ms of bytecode)
                  from wrk with 8 connections, the server on every core, then pinned to one
                  (the control). Law: processpool's rate grows with the cores (>= 0.75 x cores x
                  its one-core rate); threadpool, selectors and asyncio stay at one core's
                  (<= 1.25 x). The generator needs little CPU: a /cpu answer takes milliseconds.
``interference``  What does one slow request cost the others? /plaintext latency (p50, p99, max
                  of sequential requests on a keep-alive connection) while k = 0, 1, 2 (4)
                  connections run /cpu back to back. Expectation: the loops' p99 >= one /cpu
                  duration once k >= 1; threadpool shows the GIL convoy; processpool isolates
                  the probe only when its connection went to a worker without a /cpu connection
                  (connections never move between workers), so no law is checked there.

``latency``       How close to its ceiling can each engine run before latency explodes? Open
                  loop at 10 .. 110 % of its ceiling; the knee.
``connections``   What does a connection cost? RSS and descriptors per held connection.
``multiplex``     When does HTTP/2 multiplexing help? h2load -c C -m M, C x M = 128, against h1.

Every row carries the summary schema's identity columns plus ``experiment``, ``server_cpus``
(the cores the server may use) and ``server_cpu_us_per_req`` (the server tree's user + system
CPU time per request, µs: stable across noisy machines, unlike req/s), ``law``, ``expected``,
``held`` and ``note``. ``--quick`` shrinks every experiment to well under a minute.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import statistics
import tempfile
import threading
import time
from typing import Callable

from rich.console import Console
from rich.table import Table

from .bench import machine_info
from .servers import HOST, ROOT, running
from .tools import BenchError

from .experiment_base import COLUMNS, ENGINES, Config, _measured, _probe_path, _row, _spec, _workers, _wrk
from .experiment_cost import run_cost, run_multiplex
from .experiment_latency import run_connections, run_latency

__all__ = ["EXPERIMENTS", "COLUMNS", "Config", "wait_law", "window_expected", "steady", "main"]

__all__ = ["EXPERIMENTS", "COLUMNS", "Config", "wait_law", "window_expected", "steady", "main"]


def steady(n: int, law: float, duration: float) -> bool:
    """Whether a wrk run of ``duration`` s can be held to Little's law: each request takes
    W = N / X, and the N requests still in flight when wrk stops are not counted, so the measured
    rate falls short by about W / duration; judged only when that is at most 10 %."""
    return n / law <= duration / 10


def window_expected(n: int, law: float, duration: float) -> float:
    """What wrk can count in ``duration`` s at Little's rate ``law``: the first answers come
    W = N / X after the start and the N requests in flight at the end are not counted, so about
    X (T - W) requests, a rate of X (1 - W / T) (req/s)."""
    return law * max(0.0, 1.0 - (n / law) / duration)


def unjudged(n: int, law: float, duration: float, rps: float) -> str:
    """The note of a row :func:`steady` leaves unjudged."""
    return (f"not judged: W = N / X = {n / law:.2f} s is over a tenth of the {duration:g} s run "
            f"(the requests in flight at the end are not counted); {rps / law:.2f}x the law")


def wait_law(engine: str, n: int, wait_s: float = 0.1) -> float:
    """Little's law for ``/io`` at ``n`` requests in flight: X = min(n, L) / wait (req/s)."""
    limit = _workers(engine)
    return (n if limit is None else min(n, limit)) / wait_s


# -- wait ---------------------------------------------------------------------------------------

def run_wait(cfg: Config) -> list[dict]:
    """``wait``: /io?ms=100 at N in flight against Little's law (module docstring)."""
    levels = (1, 16, 64) if cfg.quick else (1, 10, 32, 100, 320, 1000)
    rows = []
    for engine in cfg.engines:
        with running(_spec(engine), None, cfg.log_dir, dict(os.environ), 30) as server:
            for n in levels:
                result, cpu_s = _measured(server, lambda: _wrk(server.port, "/io?ms=100", n, cfg.duration, None))
                law = wait_law(engine, n)
                want = window_expected(n, law, cfg.duration)
                if not steady(n, law, cfg.duration):  # (then want may be 0)
                    held, note = None, unjudged(n, law, cfg.duration, result["rps"])
                else:
                    held = abs(result["rps"] - want) <= 0.10 * want
                    note = "" if held else f"{result['rps'] / want:.2f}x the law over the window"
                limit = _workers(engine)
                rows.append(_row(cfg, "wait", engine, "io", n, result, cpu_s, os.cpu_count() or 1,
                                 f"X = min(N, L) / 0.1 s, L = {limit or 'unbounded'}; over a T s window "
                                 "X (1 - W / T), W = N / X", f"{law:.0f} req/s ({want:.0f} over {cfg.duration:g} s)",
                                 held, note))
    return rows


# -- cores --------------------------------------------------------------------------------------

def run_cores(cfg: Config) -> list[dict]:
    """``cores``: /cpu on every core against one core (module docstring)."""
    cpus = os.cpu_count() or 1
    rows = []
    for engine in cfg.engines:
        rates = {}
        for label in ("one core", "all cores"):
            one = label == "one core"  # the control: server on core 0, wrk on the last core
            with running(_spec(engine), 0 if one else None, cfg.log_dir, dict(os.environ), 30) as server:
                gen = [cpus - 1] if one and cpus > 1 else None
                result, cpu_s = _measured(server, lambda: _wrk(server.port, "/cpu", 8, cfg.duration, gen))
            rates[label] = result["rps"]
            if label == "one core":
                rows.append(_row(cfg, "cores", engine, "cpu", 8, result, cpu_s, 1, "control: one core",
                                 "", None))
                continue
            ratio = result["rps"] / rates["one core"] if rates["one core"] else 0.0
            if engine == "processpool":
                want = 0.75 * min(cpus, _workers(engine) or cpus)
                held, expected = ratio >= want, f">= {want:.2f}x one core"
            else:
                held, expected = ratio <= 1.25, "<= 1.25x one core"
            rows.append(_row(cfg, "cores", engine, "cpu", 8, result, cpu_s, cpus,
                             "processpool ~ cores x one core; the others ~ one core", expected, held,
                             f"{ratio:.2f}x its one-core rate"))
    return rows


# -- interference -------------------------------------------------------------------------------

def _cpu_loop(port: int, stop: threading.Event) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        while not stop.is_set():
            conn.request("GET", "/cpu")
            conn.getresponse().read()
    finally:
        conn.close()


def run_interference(cfg: Config) -> list[dict]:
    """``interference``: /plaintext latency while k connections run /cpu (module docstring)."""
    levels = (0, 1, 2) if cfg.quick else (0, 1, 2, 4)
    count = 100 if cfg.quick else 400
    rows = []
    for engine in cfg.engines:
        with running(_spec(engine), None, cfg.log_dir, dict(os.environ), 30) as server:
            cpu_ms = statistics.median(_probe_path(server.port, "/cpu", 5))
            for k in levels:
                stop = threading.Event()
                loops = [threading.Thread(target=_cpu_loop, args=(server.port, stop), daemon=True) for _ in range(k)]
                for t in loops:
                    t.start()
                try:
                    t0 = time.perf_counter()
                    before = server.cpu_seconds()
                    lat = sorted(_probe_path(server.port, "/plaintext", count))
                    cpu_s = server.cpu_seconds() - before
                    elapsed = time.perf_counter() - t0
                finally:
                    stop.set()
                    for t in loops:
                        t.join(30)
                result = {"requests": count, "rps": count / elapsed, "p50_ms": round(lat[len(lat) // 2], 3),
                          "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3), "max_ms": round(lat[-1], 3)}
                expected, held = _interference_expectation(engine, k, result["p99_ms"], cpu_ms)
                rows.append(_row(cfg, "interference", engine, "plaintext", k, result, cpu_s, os.cpu_count() or 1,
                                 "p99 of /plaintext while k connections run /cpu", expected, held,
                                 f"one /cpu takes {cpu_ms:.1f} ms here"))
    return rows


def _interference_expectation(engine: str, k: int, p99_ms: float, cpu_ms: float) -> tuple[str, bool | None]:
    if k == 0:
        return "the unloaded baseline", None
    if engine in ("selectors", "asyncio"):
        return f">= {cpu_ms / 2:.1f} ms (a /cpu in the way)", p99_ms >= cpu_ms / 2
    if engine == "processpool":
        return "low while the probe's worker has no /cpu connection", None
    return "grows with k (the GIL convoy)", None


#: the reference set, in the order ``all`` runs them (``latency`` reads ``cost``'s ceilings)
EXPERIMENTS: dict[str, Callable[[Config], list[dict]]] = {
    "cost": run_cost, "wait": run_wait, "cores": run_cores, "interference": run_interference,
    "latency": run_latency, "connections": run_connections, "multiplex": run_multiplex}


def write_rows(path: str, rows: list[dict]) -> None:
    """Write ``rows`` (COLUMNS) to ``path`` as CSV, replacing it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the named experiment(s); print each table; write results/experiments/NAME.csv.
    Returns 0 (rows off their law are flagged ``held = NO`` and counted, a finding, not a
    failure), 2 on a usage error or when an experiment failed (the others still run)."""
    p = argparse.ArgumentParser(prog="python -m loadtest experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help=f"one of {', '.join(EXPERIMENTS)}, or all")
    p.add_argument("--quick", action="store_true", help="each experiment in well under a minute")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: all four)")
    p.add_argument("--duration", type=float, default=None, help="s per measurement (default 2 quick, 10)")
    p.add_argument("--results", default=os.path.join(ROOT, "results", "experiments"), help="output folder")
    args = p.parse_args(argv)
    console = Console(width=160)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    if any(n not in EXPERIMENTS for n in names):
        p.error(f"unknown experiment {args.name!r}")
    engines = tuple(e for e in args.engines.split(",") if e)
    if any(e not in ENGINES for e in engines):
        p.error(f"unknown engine in {args.engines!r}")
    duration = args.duration or (2.0 if args.quick else 10.0)
    flagged, failed = 0, []
    with tempfile.TemporaryDirectory() as log_dir:
        cfg = Config(engines, args.quick, duration, args.results, log_dir, machine_info())
        for name in names:
            started = time.monotonic()
            try:
                rows = EXPERIMENTS[name](cfg)
            except (BenchError, OSError) as exc:  # the next experiment still runs
                console.print(f"[red]{name} failed: {exc}[/red]")
                failed.append(name)
                continue
            console.print(f"[dim]{name}: {time.monotonic() - started:.0f} s[/dim]")
            write_rows(os.path.join(args.results, f"{name}.csv"), rows)
            table = Table(title=f"experiment {name}" + (" (quick)" if args.quick else ""))
            for col in ("engine", "protocol", "workload", "users", "rps", "p50_ms", "p99_ms", "max_ms", "server_cpu_us_per_req",
                        "expected", "held", "note"):
                table.add_column(col)
            for r in rows:
                table.add_row(*(str(r[c]) if r[c] is not None else "" for c in
                                ("engine", "protocol", "workload", "users", "rps", "p50_ms", "p99_ms", "max_ms", "server_cpu_us_per_req",
                                 "expected", "held", "note")))
                flagged += r["held"] == "NO"
            console.print(table)
    console.print(f"{flagged} row(s) off their law (held = NO)")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 2
    return 0
