"""Experiments: each one question about the concurrency models, the law its numbers must obey,
and rows in results/experiments/NAME.csv.

Usage::

    python -m loadtest experiment NAME [--repeats R] [--seed S] [--quick] [--engines LIST] [--workers LIST]
                                       [--no-peers] [--no-control] [--results DIR] [--append]
    python -m loadtest experiment all --quick
    python -m loadtest experiment cost --repeats 5             # 5 rounds, each on freshly started servers
    python -m loadtest experiment cores --workers 1,2,4,8      # on a machine with many cores

Two axes: the model (the four engines) and how many copies of it run (``--workers``, W). Beside
the four configurations as the lab has always run them (threadpool, selectors and asyncio in one
process, processpool one process per core), ``wait``, ``cores``, ``interference``, ``deploy`` and
``connections`` run the hybrids ``threadpool xW``, ``selectors xW``, ``asyncio xW`` (W = the
cores the server may use, or each W of ``--workers``) and, where a peer can answer the question,
the peers at W workers in the same run: uvicorn ``--workers W`` (httptools), granian ``--workers
W``, gunicorn ``-w W -k gthread --threads 32``, hypercorn ``-w W``, each serving
loadtest/harness/peers.py's bare workload callable. Rows carry ``workers``.

The nine questions (``all`` runs them in this order; ``cost``, ``multiplex``: loadtest/
experiment_cost.py; ``deploy``, ``latency``, ``connections``: loadtest/experiments/latency.py):

``cost``          What does each model's machinery cost per request (and against the peers)?
``wait``          How many waits can each model hold? ``/io?ms=100`` from wrk with N connections
                  (one request in flight each). Law (Little's, L = concurrency served at once):
                  X = min(N, L) / 0.1 s, L = threads x W for threadpool (and gunicorn
                  gthread), W for processpool, unbounded for the loops (a hybrid holds waits like
                  a loop) and the ASGI peers. A row more than 10 % off the law is flagged.
``cores``         Who uses more than one core for CPU work? ``/cpu`` (a few ms of bytecode)
                  from wrk with 8 connections, the server on every core, then pinned to one
                  (the control). Law: processpool's rate grows with the cores (>= 0.75 x cores x
                  its one-core rate); threadpool, selectors and asyncio stay at one core's
                  (<= 1.25 x). Then each model x W and the peers at 1 and W workers, on every
                  core, wrk with max(16, 4 W) connections. Law: model x W >= 0.75 x min(W, cores)
                  x its one-process rate on one core (the control; processes share no GIL). The generator needs little
                  CPU: a /cpu answer takes milliseconds.
``interference``  What does one slow request cost the others? /plaintext latency (p50, p99, max
                  of sequential requests on a keep-alive connection) while k = 0, 1, 2 (4)
                  connections run /cpu back to back. Expectation: the loops' p99 >= one /cpu
                  duration once k >= 1; threadpool shows the GIL convoy; processpool isolates
                  the probe only when its connection went to a worker without a /cpu connection
                  (connections never move between workers), so no law is checked there. A
                  hybrid is probed on a new connection per request; law: the share of probes
                  that stalled (>= half a /cpu) is at most k / W (+ 0.1): only connections in the
                  same process as a /cpu request wait for it.
``deploy``        Which deployment serves a mixed load best? 90 % /plaintext, 10 % /cpu, open loop
                  at one fixed rate, every deployment and the peers; p99 and achieved rate.

``latency``       How close to its ceiling can each engine run before latency explodes? Open
                  loop at 10 .. 110 % of its ceiling; the knee.
``connections``   What does a connection cost? RSS and descriptors per held connection.
``multiplex``     When does HTTP/2 multiplexing help? h2load -c C -m M, C x M = 128, against h1.
``db``            What does a real database change? TechEmpower's routes against one PostgreSQL
                  the harness starts, then the pool axis (loadtest/experiments/database.py; left
                  out, saying why, where PostgreSQL's binaries are missing).

Repeats and rounds. Every cell is measured ``--repeats R`` times (default 5; ``--quick`` 2), each on
a freshly started server after a discarded warm-up (``base.warm_up``). The repeats run in rounds:
round r runs the whole experiment once, visiting its configurations in an order shuffled from the
recorded ``--seed`` and r (``Config.order``), so the drift of the machine falls on all of them alike.
Each round also measures the A/A control, ``selectors (A/A)``: selectors again under a second name
(``--no-control`` leaves it out); the report pairs it with ``selectors`` round by round, and a ratio
that is not a tie is a fault of the harness. Rows carry ``round``, ``repeat`` and ``seed``; medians,
intervals and verdicts are the report's (loadtest/report/stats.py). Each measured window also records
the machine's steal time and the CPU used outside the server and the harness (``steal_pct``,
``foreign_cores``; loadtest/harness/noise.py): a noisy window is measured again (at most twice) and
the row keeps ``noisy`` and a note.

Every row carries the summary schema's identity columns plus ``experiment``, ``server_cpus``
(the cores the server may use) and ``server_cpu_us_per_req`` (the server tree's user + system
CPU time per request, µs: stable across noisy machines, unlike req/s), ``law``, ``expected``,
``held`` and ``note``. ``--quick`` shrinks every experiment to well under a minute.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import sys
import random
import statistics
import tempfile
import threading
import time
from typing import Callable

from rich.console import Console
from rich.table import Table

from loadtest.experiments.base import (COLUMNS, ENGINES, HYBRIDS, Config, Deployment, _measured, _probe_path, _row,
                                       _spec, _workers, _wrk, deployment_of, deployment_spec, deployments, failure,
                                       interpreter_workers, original, pool_threads, probe_errors, thread_workers, server_cores, server_env, wait_limit, warm_up)
from loadtest.experiments.database import run_db
from loadtest.harness import interpreters
from loadtest.harness.generators import BenchError, Result
from loadtest.harness.machine import machine_info
from loadtest.harness.servers import HOST, ROOT, running
from loadtest.experiments.cost import run_cost, run_multiplex
from loadtest.experiments.latency import run_connections, run_deploy, run_latency

__all__ = ["EXPERIMENTS", "COLUMNS", "Config", "wait_law", "window_expected", "steady", "main"]


#: N of the wait experiment: one, threadpool's pool (32), ten pools, and the headline's 1,000
WAIT_LEVELS = (1, 32, 320, 1000)


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


def wait_law(engine: str | Deployment, n: int, wait_s: float = 0.1) -> float:
    """Little's law for ``/io`` at ``n`` requests in flight: X = min(n, L) / wait (req/s); L of
    a row's ``engine`` name (``selectors``, ``threadpool x2``) or of a :class:`Deployment`."""
    limit = wait_limit(engine if isinstance(engine, Deployment) else deployment_of(engine))
    return (n if limit is None else min(n, limit)) / wait_s


# -- wait ---------------------------------------------------------------------------------------

def run_wait(cfg: Config) -> list[dict]:
    """``wait``: /io?ms=100 at N in flight against Little's law (module docstring)."""
    levels = (1, 16, 64) if cfg.quick else WAIT_LEVELS
    rows = []
    for dep in deployments(cfg):
        engine = dep.name
        with running(deployment_spec(dep), None, cfg.log_dir, server_env(), 60) as server:
            warm_up(server)
            for n in levels:
                result, cpu_s = _measured(server, lambda: _wrk(server.port, "/io?ms=100", n, cfg.duration, None))
                law = wait_law(dep, n)
                limit = wait_limit(dep)
                want = window_expected(n, law, cfg.duration)
                if not steady(n, law, cfg.duration):  # (then want may be 0)
                    held, note = None, unjudged(n, law, cfg.duration, result.rps)
                else:
                    held = abs(result.rps - want) <= 0.10 * want
                    note = "" if held else f"{result.rps / want:.2f}x the law over the window"
                    if not held and limit is not None and dep.workers > 1 and n >= limit / dep.workers:
                        note += ("; the connections spread unevenly over the processes: a pool in each holds "
                                 "min(its share, its threads), and X = their sum / 0.1 s falls below min(N, L)")
                rows.append(_row(cfg, "wait", engine, "io", n, result, cpu_s, server_cores(),
                                 f"X = min(N, L) / 0.1 s, L = {limit or 'unbounded'}; over a T s window "
                                 "X (1 - W / T), W = N / X", f"{law:.0f} req/s ({want:.0f} over {cfg.duration:g} s)",
                                 held, note, workers=dep.workers))
    return rows


# -- cores --------------------------------------------------------------------------------------

def cores_connections(workers: int) -> int:
    """wrk's connections for /cpu at ``workers`` processes: 16, or 4 per worker beyond four
    (each worker's SO_REUSEPORT queue gets some by the kernel's hash: with 16, all on one of
    two workers has odds of 2 ** -15)."""
    return max(16, 4 * workers)


def run_cores(cfg: Config) -> list[dict]:
    """``cores``: /cpu on every core against one core, then each model x W and the peers at
    1 and W workers (module docstring)."""
    cpus = server_cores()
    rows = []
    one_process: dict[str, float] = {}  # model -> /cpu req/s of one process on every core
    for engine in cfg.engine_names():
        rates = {}
        for label in ("one core", "all cores"):
            one = label == "one core"  # the control: server on core 0, wrk on the last core
            with running(_spec(engine), 0 if one else None, cfg.log_dir, dict(os.environ), 30) as server:
                warm_up(server, "/cpu")
                gen = [cpus - 1] if one and cpus > 1 else None
                result, cpu_s = _measured(server, lambda: _wrk(server.port, "/cpu", 8, cfg.duration, gen))
            rates[label] = result.rps
            if label == "one core":
                rows.append(_row(cfg, "cores", engine, "cpu", 8, result, cpu_s, 1, "control: one core",
                                 "", None))
                continue
            ratio = result.rps / rates["one core"] if rates["one core"] else 0.0
            one_process[engine] = rates["one core"]  # one process (processpool: all its workers) on one core
            free_threads = original(engine) == "threadpool" and interpreters.current().gil == "no"
            if original(engine) == "processpool" or free_threads:  # processes, or threads without a GIL
                want = 0.75 * min(cpus, _workers(engine) or cpus)
                held, expected = ratio >= want, f">= {want:.2f}x one core"
            else:
                held, expected = ratio <= 1.25, "<= 1.25x one core"
            rows.append(_row(cfg, "cores", engine, "cpu", 8, result, cpu_s, cpus,
                             "processpool ~ cores x one core (and threadpool without a GIL); the others ~ one core",
                             expected, held, f"{ratio:.2f}x its one-core rate"))
    # the second axis: each model x W, the peers at 1 and W workers (all cores)
    peer_cfg = Config(cfg.engines, cfg.quick, cfg.duration, cfg.results, cfg.log_dir, cfg.machine,
                      tuple(sorted({1, *cfg.workers})), cfg.peers)
    extra = [d for d in deployments(cfg, peers=False, plain_engines=False)]
    if interpreters.current().interpreter_workers:  # one interpreter worker: their own baseline
        extra = [interpreter_workers(e, 1) for e in cfg.engines if e in HYBRIDS] + extra
    # thread workers on every Python: in parallel without a GIL, a convoy under one (the lesson)
    gil = interpreters.current().gil == "yes"
    if not interpreters.current().free_threaded:  # (deployments() adds the W > 1 ones on 3.14t)
        extra += [thread_workers(e, w) for w in cfg.workers if w > 1 for e in cfg.engines if e in HYBRIDS]
    extra = [thread_workers(e, 1) for e in cfg.engines if e in HYBRIDS] + extra
    extra += [d for d in deployments(peer_cfg, plain_engines=False) if d.kind == "peer"]
    # one-process baselines before the copies that are set against them, each group in this round's order
    extra = (cfg.order([d for d in extra if d.workers == 1], "cores one")
             + cfg.order([d for d in extra if d.workers > 1], "cores many"))
    for dep in extra:
        c = cores_connections(dep.workers)
        one = dep.workers == 1  # a peer's one process: on one core, as the engines' control
        gen = [cpus - 1] if one and cpus > 1 else None
        with running(deployment_spec(dep), 0 if one else None, cfg.log_dir, server_env(), 60) as server:
            warm_up(server, "/cpu")
            result, cpu_s = _measured(server, lambda: _wrk(server.port, "/cpu", c, cfg.duration, gen))
        if dep.workers == 1:
            one_process[dep.key] = result.rps
        base = one_process.get(dep.key)
        usable = min(dep.workers, cpus)
        want = 0.75 * usable
        ratio = result.rps / base if base else 0.0
        convoy = dep.worker_kind == "thread" and gil  # threads of one process under one GIL
        held = None if dep.workers == 1 or not base else (ratio <= 1.25 if convoy else ratio >= want)
        one_name = {"interpreter": "one-interpreter-worker", "thread": "one-thread-worker"}.get(dep.worker_kind,
                                                                                                "one-process")
        note = (f"{ratio:.2f}x its {one_name} rate ({base:.0f} req/s, one core)" if base and dep.workers > 1
                else f"the {one_name} rate, on one core" if dep.workers == 1 else f"no {one_name} rate measured")
        law = ("thread workers under a GIL <= 1.25x one (one GIL: the threads take turns)" if convoy else
               "model x W copies >= 0.75 x min(W, cores) x one copy on one core (no GIL between processes, "
               "interpreters, or free threads)")
        rows.append(_row(cfg, "cores", dep.name, "cpu", c, result, cpu_s, 1 if one else cpus, law,
                         "" if dep.workers == 1 else ("<= 1.25x one thread worker" if convoy
                                                      else f">= {want:.2f}x one process"),
                         held, note, workers=dep.workers))
    if interpreters.current().free_threaded:
        rows += _pool_threads(cfg, cpus, gil)
    return rows


#: threadpool's pool sizes measured on a free-threaded build (``threadpool --threads T``)
POOL_THREADS = (1, 2, 4)


def _pool_threads(cfg: Config, cpus: int, gil: bool) -> list[dict]:
    """On a free-threaded build: one threadpool process with ``--threads`` 1, 2 and 4 on /cpu on
    every core, each set against ``--threads 1`` (without a GIL: >= 0.75 x min(T, cores); with
    PYTHON_GIL=1: <= 1.25x), and the same at 1 and 2 threads on ``/cpu?shared=1`` (workload
    ``cpu-shared``: the variant whose constant every thread shares, app/lab.py), so that both forms
    of /cpu are reported under 3.14t."""
    rows = []
    plan = [(t, "cpu", "/cpu") for t in POOL_THREADS] + [(t, "cpu-shared", "/cpu?shared=1") for t in (1, 2)]
    rates: dict[str, float] = {}
    for threads, workload, path in plan:
        dep = pool_threads(threads)
        c = cores_connections(1)
        with running(deployment_spec(dep), None, cfg.log_dir, server_env(), 60) as server:
            warm_up(server, path)
            result, cpu_s = _measured(server, lambda: _wrk(server.port, path, c, cfg.duration, None))
        if threads == 1:
            rates[workload] = result.rps
        base = rates.get(workload)
        want = 0.75 * min(threads, cpus)
        ratio = result.rps / base if base else 0.0
        held = None if threads == 1 or not base else (ratio <= 1.25 if gil else ratio >= want)
        note = (f"{ratio:.2f}x --threads 1 ({base:.0f} req/s)" if base and threads > 1
                else "the --threads 1 rate, on every core" if threads == 1 else "no --threads 1 rate measured")
        rows.append(_row(cfg, "cores", dep.name, workload, c, result, cpu_s, cpus,
                         "threadpool --threads T on a free-threaded build: >= 0.75 x min(T, cores) x --threads 1 "
                         "with the GIL off; <= 1.25x with PYTHON_GIL=1",
                         "" if threads == 1 else ("<= 1.25x --threads 1" if gil else f">= {want:.2f}x --threads 1"),
                         held, note, workers=1))
    return rows


# -- interference -------------------------------------------------------------------------------

def _cpu_loop(port: int, stop: threading.Event, errors: list[str]) -> None:
    """One of interference's k connections: ``GET /cpu`` back to back until ``stop``. A request
    that gets no answer is appended to ``errors`` and the connection opened anew, so k stays k."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        while not stop.is_set():
            try:
                conn.request("GET", "/cpu")
                conn.getresponse().read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(failure(exc))  # list.append: atomic, no lock needed
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
    finally:
        conn.close()


def _probe_new_connections(port: int, path: str, count: int, errors: list[str] | None = None) -> list[float]:
    """``count`` sequential GETs of ``path``, each on a new connection (so that the probes spread
    over the workers as new clients do): latencies (ms), connecting included, of the answered
    ones. ``errors`` as in :func:`_probe_path`: without it the first failure raises."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            if errors is None:
                raise
            errors.append(failure(exc))
            continue
        finally:
            conn.close()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run_interference(cfg: Config) -> list[dict]:
    """``interference``: /plaintext latency while k connections run /cpu (module docstring).
    A hybrid (model x W) is probed on a new connection per request: the share of probes that
    stalled behind a /cpu request (slower than half of one) is set against k / W. A probe or /cpu
    request without an answer (a reset, a timeout) is kept in its row (``requests`` counts the
    answered probes; the note counts each error and quotes the server's log), never raised: one
    failed cell does not cost the experiment's other cells."""
    levels = (0, 1, 2) if cfg.quick else (0, 1, 2, 4)
    count = 100 if cfg.quick else 400
    rows = []
    for dep in deployments(cfg, peers=False):
        engine = dep.name
        probe = _probe_new_connections if dep.hybrid else _probe_path
        with running(deployment_spec(dep), None, cfg.log_dir, server_env(), 60) as server:
            warm_up(server)
            cpu_ms = statistics.median(_probe_path(server.port, "/cpu", 5))
            for k in levels:
                stop = threading.Event()
                errors: list[str] = []
                cpu_errors: list[str] = []
                loops = [threading.Thread(target=_cpu_loop, args=(server.port, stop, cpu_errors), daemon=True)
                         for _ in range(k)]
                for t in loops:
                    t.start()
                def probed() -> Result:
                    errors.clear()
                    t0 = time.perf_counter()
                    lat = probe(server.port, "/plaintext", count, errors)
                    result = Result.from_latencies(lat, time.perf_counter() - t0, latencies=sorted(lat))
                    result.failures = len(errors)
                    return result
                try:
                    result, cpu_s = _measured(server, probed)
                finally:
                    stop.set()
                    for t in loops:
                        t.join(30)
                lat = result.detail.pop("latencies")
                stalled = sum(1 for x in lat if x >= cpu_ms / 2) / len(lat) if lat else 0.0
                note = f"one /cpu takes {cpu_ms:.1f} ms here; {stalled:.0%} of probes stalled (>= {cpu_ms / 2:.1f} ms)"
                if errors or cpu_errors:
                    result.detail["socket_error_detail"] = probe_errors(errors)
                    note += "".join((f"; /cpu connections: {probe_errors(cpu_errors)}" if cpu_errors else "",
                                     f"; server log: {server.log_tail(4)}"))
                if not lat:
                    held, expected = None, "no probe answered"
                elif dep.hybrid:
                    share = min(1.0, k / dep.workers)
                    expected = f"stalled share <= k / W = {share:.2f} (only a /cpu's own process stalls)"
                    # judged only where it can fail: with k >= W every process may hold a /cpu
                    held = None if k == 0 or share + 0.10 >= 1.0 else stalled <= share + 0.10
                    note += f" against k / W = {share:.2f}" + (
                        "; not judged: k >= W, so every probe may stall" if k and share + 0.10 >= 1.0 else "")
                else:
                    expected, held = _interference_expectation(original(dep.model), k, result.p99_ms, cpu_ms)
                rows.append(_row(cfg, "interference", engine, "plaintext", k, result, cpu_s, server_cores(),
                                 "p99 of /plaintext while k connections run /cpu", expected, held, note,
                                 workers=dep.workers))
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
    "deploy": run_deploy, "latency": run_latency, "connections": run_connections, "multiplex": run_multiplex,
    "db": run_db}


def write_rows(path: str, rows: list[dict]) -> None:
    """Write ``rows`` (COLUMNS) to ``path`` as CSV, replacing it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: str) -> list[dict]:
    """The rows of ``path`` (COLUMNS; a column an older run lacks is empty), or [] without it."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{c: r.get(c, "") for c in COLUMNS} for r in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    """Run the named experiment(s); print each table; write results/experiments/NAME.csv.
    Returns 0 (rows off their law are flagged ``held = NO`` and counted, a finding, not a
    failure), 2 on a usage error or when an experiment failed (the others still run)."""
    p = argparse.ArgumentParser(prog="python -m loadtest experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help=f"one of {', '.join(EXPERIMENTS)}, or all")
    p.add_argument("--quick", action="store_true", help="each experiment in well under a minute")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: all four)")
    p.add_argument("--duration", type=float, default=None,
                   help="s per measurement (default 2 quick, 5; cost 3, multiplex 3: docs/experiments.md's budget)")
    p.add_argument("--workers", default=None, metavar="LIST",
                   help="worker counts W of the hybrids (model x W processes) and the peers, comma-separated "
                        f"(default: the cores the server may use here, {server_cores()})")
    p.add_argument("--no-peers", action="store_true", help="leave out the peers at W workers")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help="rounds: each cell measured R times, each on a freshly started server, the configurations "
                        "in a shuffled order per round (default 5; --quick 2)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the rounds' order (default: drawn, and written in every row)")
    p.add_argument("--no-control", action="store_true",
                   help="leave out the A/A control (selectors measured twice, under two names)")
    p.add_argument("--only", default=None, metavar="LIST",
                   help="with all: only these experiments, comma-separated (a piece of the reference run)")
    p.add_argument("--append", action="store_true",
                   help="add the rows to the experiment's CSV instead of replacing it (a reference run in pieces)")
    p.add_argument("--python", default=None, metavar="LIST",
                   help="the Pythons the servers run on, comma-separated commands, each in turn in one run "
                        "(e.g. python3,scripts/python3.14); rows carry python and gil (default: this Python)")
    p.add_argument("--results", default=os.path.join(ROOT, "results", "experiments"), help="output folder")
    args = p.parse_args(argv)
    console = Console(width=160)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    if any(n not in EXPERIMENTS for n in names):
        p.error(f"unknown experiment {args.name!r}")
    if args.only:
        only = [n for n in args.only.split(",") if n]
        if any(n not in EXPERIMENTS for n in only) or args.name != "all":
            p.error(f"--only wants experiments of {', '.join(EXPERIMENTS)}, with all, not {args.only!r}")
        names = [n for n in names if n in only]
    if args.name == "all" and "db" in names:  # the database experiment needs PostgreSQL's binaries
        from loadtest.harness.postgres import PostgresUnavailable, bindir

        try:
            bindir()
        except PostgresUnavailable as exc:
            console.print(f"[yellow]db left out: {exc}[/yellow]")
            names.remove("db")
    engines = tuple(e for e in args.engines.split(",") if e)
    if any(e not in ENGINES for e in engines):
        p.error(f"unknown engine in {args.engines!r}")
    duration = args.duration or (2.0 if args.quick else 5.0)
    try:
        workers = tuple(int(w) for w in args.workers.split(",")) if args.workers else ()
    except ValueError:
        p.error(f"--workers wants whole numbers >= 1, comma-separated, not {args.workers!r}")
    if any(w < 1 for w in workers):
        p.error(f"--workers wants whole numbers >= 1, not {args.workers!r}")
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if repeats < 1:
        p.error(f"--repeats wants a whole number >= 1, not {repeats}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
    try:
        pythons = [interpreters.probe(c) for c in args.python.split(",") if c] if args.python else [
            interpreters.current()]
    except OSError as exc:
        p.error(f"--python: {exc}")
    flagged, failed = 0, []
    written: dict[str, list[dict]] = {}
    if args.append:  # a piece of a larger run: keep what the earlier pieces wrote
        for name in names:
            written[name] = read_rows(os.path.join(args.results, f"{name}.csv"))
    else:  # these experiments' CSVs are replaced: so are their pieces in the manifest
        forget_pieces(args.results, names)
    # the revision once, before any row is written: the run's own CSVs under results/ would make
    # every later Python's rows say -dirty
    info = machine_info()
    for interp in pythons:
        with interpreters.use(interp), tempfile.TemporaryDirectory() as log_dir:
            console.print(f"[bold]servers on {interp.label} (GIL: {interp.gil}): {interp.command}[/bold]")
            cfg = Config(engines, args.quick, duration, args.results, log_dir, info, workers,
                         not args.no_peers, seed=seed, control=not args.no_control)
            flagged += _run(names, cfg, args, console, written, failed)
    console.print(f"{flagged} row(s) off their law (held = NO); seed {seed}, {repeats} round(s)")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 2
    return 0


def _run(names: list[str], cfg: Config, args: argparse.Namespace, console: Console,
         written: dict[str, list[dict]], failed: list[str]) -> int:
    """Run ``names`` under the current interpreter; append to ``written`` (experiment -> rows of
    every interpreter so far, rewritten to its CSV after each); returns the rows flagged NO."""
    flagged = 0
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    for name in names:
        started = time.monotonic()
        rows: list[dict] = []
        try:
            for rnd in range(1, repeats + 1):
                cfg.round = rnd
                console.print(f"[dim]{name}: round {rnd} of {repeats} (seed {cfg.seed})[/dim]")
                rows += EXPERIMENTS[name](cfg)
        except (BenchError, OSError) as exc:  # the next experiment still runs
            console.print(f"[red]{name} failed: {exc}[/red]")
            failed.append(name)
            continue
        elapsed = time.monotonic() - started
        console.print(f"[dim]{name}: {elapsed:.0f} s[/dim]")
        record_piece(args.results, {"experiment": name, "python": interpreters.current().label,
                                    "gil": interpreters.current().gil, "revision": cfg.machine["git"],
                                    "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(time.time() - elapsed)),
                                    "duration_s": round(elapsed), "repeats": repeats, "seed": cfg.seed,
                                    "rows": len(rows), "cpu": cfg.machine["cpu"], "cores": cfg.machine["cores"],
                                    "command": "python -m loadtest experiment " + " ".join(sys.argv[2:] if
                                                                                           sys.argv[1:2] == ["experiment"] else sys.argv[1:])})
        written.setdefault(name, []).extend(rows)
        write_rows(os.path.join(args.results, f"{name}.csv"), written[name])
        console.print(summary_table(name, rows, args.quick))
        flagged += sum(r["held"] == "NO" for r in rows)
    return flagged


MANIFEST = "manifest.json"


def record_piece(results: str, piece: dict) -> None:
    """Append one piece of a run (an experiment under one Python: its revision, Python, date,
    duration, rounds, seed, command) to ``RESULTS/manifest.json``, the list the report reads to
    say which pieces the rows come from."""
    path = os.path.join(results, MANIFEST)
    pieces = []
    if os.path.exists(path):
        with open(path) as f:
            pieces = json.load(f)
    pieces.append(piece)
    os.makedirs(results, exist_ok=True)
    with open(path, "w") as f:
        json.dump(pieces, f, indent=1)
        f.write("\n")


def forget_pieces(results: str, names: list[str]) -> None:
    """Drop the manifest's pieces of ``names`` (their CSVs are about to be replaced)."""
    path = os.path.join(results, MANIFEST)
    if os.path.exists(path):
        with open(path) as f:
            pieces = [p for p in json.load(f) if p.get("experiment") not in names]
        with open(path, "w") as f:
            json.dump(pieces, f, indent=1)
            f.write("\n")


def summary_table(name: str, rows: list[dict], quick: bool = False) -> Table:
    """A rich table of ``rows`` summarised per cell (engine, protocol, workload, users, the server's
    cores): requests/s
    and p99 as median [95 % interval] over the rounds (loadtest/report/stats.py), n, CV, and the
    rounds whose law held."""
    from loadtest.report import stats  # the report's module: one place for the statistics

    table = Table(title=f"experiment {name}" + (" (quick)" if quick else "") + ": median \\[interval] of the rounds")
    for col in ("engine", "protocol", "workload", "users", "cores", "n", "rps", "cv", "p99_ms", "cpu µs/req", "held"):
        table.add_column(col)
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["engine"], r["protocol"], r["workload"], r["users"], r["server_cpus"]), []).append(r)

    def fmt(values: list, spec: str = ",.0f") -> str:
        xs = [float(v) for v in values if v not in (None, "")]
        if not xs:
            return ""
        ci = stats.median_ci(xs)
        return f"{ci.median:{spec}}" + (f" [{ci.low:{spec}}, {ci.high:{spec}}]" if ci.n > 1 else "")

    for (engine, protocol, workload, users, cpus), rs in cells.items():
        rps = [r["rps"] for r in rs]
        c = stats.cv([float(x) for x in rps if x not in (None, "")])
        held = [r["held"] for r in rs if r["held"]]
        spec = ",.3f" if " / " in str(engine) else ",.0f"  # a ratio row: its rps column is the ratio
        table.add_row(engine, protocol, workload, str(users), str(cpus), str(len(rs)), fmt(rps, spec), "" if c is None else f"{c:.1%}",
                      fmt([r["p99_ms"] for r in rs], ",.2f"), fmt([r["server_cpu_us_per_req"] for r in rs], ",.1f"),
                      f"{held.count('yes')}/{len(held)}" if held else "")
    return table
