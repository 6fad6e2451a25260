"""The ``latency`` and ``connections`` experiments.

``latency``      How close to its ceiling can each engine run before latency explodes? The
                 open-loop HTTP/2 user (``loadtest/h2user.py --rate``, 8 users, latency from the
                 intended send time, an HdrHistogram merged exactly) at 10, 50, 80, 90, 100 and
                 110 % of the engine's ceiling on the route (``level``), 5 s each: the median over
                 the rounds of the ``cores`` experiment's one-core /cpu rate and of the ``cost``
                 experiment's h2c -m16 /plaintext rate for this Python, else the median of three
                 h2load runs here. The server is pinned to one core, the generator to another. A
                 run with more than ``LATE_LIMIT`` (5 %) of its requests sent late is
                 generator-bound (the generator could not keep the schedule: not the server's
                 figure); one sent on time but answered below 95 % of the offered rate saturated
                 the server. The knee is the first offered load whose p99 passes 10x the p99 at
                 the lowest load (the report judges it on the rounds' intervals); "no knee up to
                 X %" where none does. Each Python's histograms are kept in
                 results/experiments/latency/<version>/ (``.hdr`` and percentile text, the last
                 round's) for the spectrum chart. ``--quick``: /cpu at 50 % and 110 %, 2 s each.
``connections``  What does a connection cost? N idle HTTP/1.1 keep-alive connections (each after
                 one answered request), then N HTTP/2 connections each with a stream open (a
                 ``POST /`` whose body never comes: the server holds the stream and waits), held
                 while a fresh connection makes 200 requests to /plaintext one after another.
                 Rows: the server tree's RSS and file descriptors added per connection, and the
                 new requests' latency meanwhile. N = 10,000 (``--quick``: 500). The server runs
                 with ``--keepalive-timeout`` and ``--body-timeout`` raised past the hold.
                 Beside the four configurations, each hybrid (model x W): the note adds the fixed
                 memory of each extra process, idle, against one process: PSS (pages shared after
                 fork counted in proportion) and RSS, over the extra processes (the workers beyond
                 one and the supervisor).
``deploy``       The mixed workload of "what to deploy": an open loop over HTTP/1.1
                 (``loadtest/h1user.py --rate``, 8 users, latency from the intended send time) of
                 90 % /plaintext and 10 % /cpu (workload ``cpu10``) at one fixed rate for every
                 deployment: the four configurations, the hybrids and the peers at W workers
                 (HTTP/1.1: uvicorn speaks no HTTP/2). The rate puts ``DEPLOY_CPU_LOAD`` (0.6) of
                 one core into /cpu alone (R = 0.6 / (0.1 x one /cpu's time, measured first on
                 selectors)): one process is busy most of the time, W processes are not. Rows:
                 achieved rate and p50/p99/max; held when the achieved rate is >= 95 % of the
                 offered. The server is not pinned (it is given every core); the generator shares
                 them, which the note's CPU figure shows.
"""

from __future__ import annotations

import csv
import json
import http.client
import os
import re
import resource
import socket
import statistics
import subprocess
import time

import h2.config
import h2.connection

from loadtest.experiments.cost import pin_cores, runner_parser
from loadtest.experiments.base import (Config, _measured, _probe_path, _row, _spec, deployment_spec, deployments,
                                       failure, probe_errors, server_cores, server_env, warm_up)
from loadtest.harness import interpreters
from loadtest.harness.servers import HOST, ROOT, running
from loadtest.harness.generators import (Result, h2load_command, locust_command, parse_h2load, parse_locust, pinned,
                                         remove_locust_csvs, run_tool)

__all__ = ["run_latency", "run_connections", "run_deploy", "LOAD_LEVELS", "knee", "DEPLOY_CPU_LOAD", "LATE_LIMIT",
           "KNEE_FACTOR", "latency_dir", "safe_name"]

LOAD_LEVELS = (0.10, 0.50, 0.80, 0.90, 1.00, 1.10)
LATENCY_USERS = 8
#: the ``deploy`` experiment's offered rate puts this much of one core into its /cpu requests
DEPLOY_CPU_LOAD = 0.6


#: a run whose share of requests sent late (after their intended time) passes this is generator-bound
LATE_LIMIT = 0.05
#: the knee: the first offered load whose p99 passes this many times the unloaded p99
KNEE_FACTOR = 10


def knee(rows: list[dict]) -> float | None:
    """The first offered rate (req/s), in increasing order, whose p99 passes ``KNEE_FACTOR`` x the
    p99 at the lowest load (rows: ``offered_rps``, ``p99_ms``); None where none does ("no knee up
    to" the highest rate). The report applies the same rule to the rounds' intervals."""
    rows = sorted((r for r in rows if r.get("p99_ms")), key=lambda r: r["offered_rps"])
    if not rows:
        return None
    limit = KNEE_FACTOR * rows[0]["p99_ms"]
    return next((r["offered_rps"] for r in rows[1:] if r["p99_ms"] > limit), None)


def safe_name(name: str) -> str:
    """``name`` as a file name: ``selectors (A/A)`` -> ``selectors_A_A_``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def latency_dir(results: str, python_label: str) -> str:
    """Where the histograms of one Python's latency and deploy runs are kept:
    ``RESULTS/latency/<version>/`` (one set per Python; a later round overwrites an earlier one)."""
    m = re.search(r"(\d+\.\d+\.\d+\S*)", python_label)
    return os.path.join(results, "latency", safe_name(m.group(1) if m else python_label))


#: the ceiling measured here (no cost.csv row): this many h2load runs of CEILING_S each, the median
CEILING_RUNS, CEILING_S = 3, 3


def _ceiling(cfg: Config, engine: str, workload: str, port: int, client_core: int | None) -> tuple[float, str]:
    """The engine's ceiling on ``workload`` (req/s): the median over every round of the cost
    experiment's h2c -m16 rows (/plaintext) or of the cores experiment's one-core rows (/cpu) for
    this Python, else the median of ``CEILING_RUNS`` h2load runs here,
    after a discarded warm-up (one run can overshoot: it is a median, never one run)."""
    # /plaintext: the cost experiment's h2c -m16 rate; /cpu: the cores experiment's one-core rate
    # (wrk, one process on one core; h2load's -m16 on /cpu overshot it by half in one 3 s run)
    source_csv, protocol = ("cores.csv", "h1") if workload == "cpu" else ("cost.csv", "h2c -m16")
    path = os.path.join(cfg.results, source_csv)
    if os.path.exists(path):
        with open(path, newline="") as f:
            found = [float(r["rps"]) for r in csv.DictReader(f)
                     if r["engine"] == engine and r["workload"] == workload and r["protocol"] == protocol and r["rps"]
                     and (workload != "cpu" or r["law"] == "control: one core")
                     and r.get("python", interpreters.current().label) == interpreters.current().label]
        if found:
            return statistics.median(found), f"{source_csv}, median of {len(found)}"
    url = f"http://{HOST}:{port}/{workload}"
    run_tool(pinned(h2load_command(url, 8, streams=16, duration_s=1), client_core), 60)  # warm-up, discarded
    rates = [parse_h2load(run_tool(pinned(h2load_command(url, 8, streams=16, duration_s=CEILING_S), client_core),
                                   60)[0]).rps for _ in range(CEILING_RUNS)]
    return statistics.median(rates), f"h2load -c8 -m16, median of {CEILING_RUNS} x {CEILING_S} s"


def _open_loop(port: int, workload: str, rate: float, seconds: float, prefix: str, client_core: int | None,
               user: str = "h2user.py") -> Result:
    """One open-loop locust run at ``rate`` req/s: :func:`parse_locust`'s result (``detail``: the
    open-loop summary: ``offered_rps``, ``late``, ...); locust's own CSVs are removed (the .hdr
    and the row keep what they said)."""
    cmd = locust_command(os.path.join(ROOT, "loadtest", user), f"http://{HOST}:{port}", LATENCY_USERS,
                         LATENCY_USERS, seconds + 1, prefix,
                         extra=["--warmup-s", "1", "--workload", workload, "--rate", f"{rate:.2f}"])
    subprocess.run(pinned(cmd, client_core), cwd=ROOT, capture_output=True, text=True, timeout=seconds + 90, check=False)
    try:
        return parse_locust(prefix)
    finally:
        remove_locust_csvs(prefix)


def run_latency(cfg: Config) -> list[dict]:
    """``latency``: open-loop latency against offered load (module docstring)."""
    routes = ("cpu",) if cfg.quick else ("cpu", "plaintext")
    levels = (0.50, 1.10) if cfg.quick else LOAD_LEVELS
    seconds = 2.0 if cfg.quick else min(cfg.duration, 5.0)
    args = runner_parser().parse_args(["h2"])
    pin_cores(args)
    out_dir = latency_dir(cfg.results, interpreters.current().label)
    os.makedirs(out_dir, exist_ok=True)
    rows: list[dict] = []
    for engine in cfg.engine_names():
        for workload in routes:
            with running(_spec(engine), args.server_core, cfg.log_dir, dict(os.environ), 30) as server:
                warm_up(server, f"/{workload}")
                ceiling, source = _ceiling(cfg, engine, workload, server.port, args.client_core)
                runs = []
                for level in levels:
                    offered = ceiling * level
                    prefix = os.path.join(out_dir, f"{safe_name(engine)}-{workload}-{round(level * 100)}")
                    s, cpu_s = _measured(server, lambda: _open_loop(server.port, workload, offered, seconds, prefix,
                                                                     args.client_core))
                    achieved = s.rps
                    late = int(s.detail.get("late", 0) or 0)
                    late_share = late / s.requests if s.requests else 0.0
                    notes = [f"{round(level * 100)} % of {ceiling:.0f} req/s ({source})",
                             f"achieved {achieved:.0f}", f"late {late} ({late_share:.0%})", f"p99.9 {s.p999_ms} ms"]
                    # who could not keep up, judged by the late share both ways: requests sent late
                    # are the generator's; sent on time but answered below the offered rate, the server's
                    generator_bound = late_share > LATE_LIMIT
                    if generator_bound:
                        notes.append(f"generator-bound: {late_share:.0%} of requests sent late (> {LATE_LIMIT:.0%}); "
                                     "not a figure of the server")
                    elif achieved < 0.95 * offered:
                        notes.append("server saturated: requests sent on time, answered below the offered rate")
                    runs.append({"offered_rps": offered, "p99_ms": None if generator_bound else s.p99_ms})
                    rows.append(_row(cfg, "latency", engine, workload, LATENCY_USERS, s, cpu_s, 1,
                                     f"open loop; knee: first offered rate whose p99 passes {KNEE_FACTOR}x the p99 "
                                     "at the lowest load", f"offered {offered:.0f} req/s",
                                     None, "; ".join(notes), protocol="h2c open loop", duration=seconds,
                                     level=f"{round(level * 100)} %"))
                k = knee(runs)
                top = max(levels)
                rows.append(_row(cfg, "latency", engine, workload, LATENCY_USERS,
                                 Result(rps=round(k, 1) if k else 0.0, requests=1 if k else 0), None, 1,
                                 "knee (rps column: the knee, req/s; empty: no knee)",
                                 f"knee at {k / ceiling:.0%} of the ceiling" if k else f"no knee up to {top:.0%}", None,
                                 f"ceiling {ceiling:.0f} req/s ({source})", protocol="h2c open loop knee",
                                 duration=seconds))
    return rows


# -- connections --------------------------------------------------------------------------------

def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _tree_usage(server) -> tuple[float, int]:
    """(RSS MiB, open file descriptors) of the server tree now."""
    rss, fds = 0, 0
    for p in server.tree():
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
        except Exception:  # noqa: BLE001 - a process that just exited
            continue
    return rss / 2**20, fds


def _tree_pss(server) -> tuple[float, int]:
    """(PSS MiB, processes) of the server tree now: the proportional set size counts a page
    shared by k processes (copy-on-write after fork) as 1/k in each, so a sum is not inflated."""
    pss, count = 0, 0
    for p in server.tree():
        try:
            pss += p.memory_full_info().pss
            count += 1
        except Exception:  # noqa: BLE001 - a process that just exited
            continue
    return pss / 2**20, count


def _open_h1(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=30)
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")
    data = b""
    while not data.endswith(b"Hello, World!"):
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed before the answer")
        data += chunk
    return s


def _open_h2(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "lab"),
                          ("content-length", "10")], end_stream=False)
    s.sendall(conn.data_to_send())
    return s


def _ready_ms(port: int) -> list[float]:
    """Each worker's start-up time, from the supervisor's start of it to serving (ms), as its
    ``/_metrics`` line says (``ready_ms``); [] when not every worker has published one yet."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        for _ in range(50):
            conn.request("GET", "/_metrics")
            procs = json.loads(conn.getresponse().read()).get("processes") or []
            ready = [p["ready_ms"] for p in procs if p.get("ready_ms") is not None]
            if ready and len(ready) == len(procs):
                return ready
            time.sleep(0.1)  # a worker publishes every 0.5 s
    finally:
        conn.close()
    return []


def run_connections(cfg: Config) -> list[dict]:
    """``connections``: RSS and descriptors per held connection, and a new request's latency. A
    probe request without an answer (a reset, a timeout) is counted in its row with the server's
    log, never raised: one failed cell does not cost the experiment's other cells."""
    n = 500 if cfg.quick else 10_000
    _raise_fd_limit(2 * n + 256)
    rows: list[dict] = []
    extra = ("--keepalive-timeout", "600", "--body-timeout", "600", "--max-connections", str(2 * n + 100))
    base: dict[tuple[str, str], tuple[float, float, int]] = {}  # (model, protocol) -> idle RSS, PSS, processes
    for dep in deployments(cfg, peers=False):
        engine = dep.name
        for protocol, opener in (("h1 idle keep-alive", _open_h1), ("h2c stream open", _open_h2)):
            with running(deployment_spec(dep, extra), None, cfg.log_dir, server_env(), 60) as server:
                errors: list[str] = []  # a probe without an answer: kept in the row, not raised
                _probe_path(server.port, "/plaintext", 20, errors)  # warm: the first requests import and cache
                try:
                    ready = _ready_ms(server.port) if dep.workers > 1 or dep.worker_kind != "process" else []
                except (OSError, http.client.HTTPException) as exc:
                    ready = []
                    errors.append(failure(exc))
                rss0, fds0 = _tree_usage(server)
                pss0, procs = _tree_pss(server)
                held, error = [], ""
                t0 = time.perf_counter()
                try:
                    for _ in range(n):
                        held.append(opener(server.port))
                except OSError as exc:
                    error = f"stopped at {len(held)}: {exc}"
                opened_s = time.perf_counter() - t0
                try:
                    lat = sorted(_probe_path(server.port, "/plaintext", 200, errors))
                    rss1, fds1 = _tree_usage(server)
                finally:
                    for s in held:
                        s.close()
                count = max(1, len(held))
                kib = (rss1 - rss0) * 1024 / count
                result = Result.from_latencies(lat, 0.0)  # a probe of the held server: no rate
                result.failures = len(errors)
                note = (f"{kib:.1f} KiB RSS and {(fds1 - fds0) / count:.2f} fds per connection; "
                        f"{len(held)} held, opened in {opened_s:.1f} s; RSS {rss0:.0f} -> {rss1:.0f} MiB")
                if errors:
                    result.detail["socket_error_detail"] = probe_errors(errors)
                    note += f"; server log: {server.log_tail(4)}"
                if ready:
                    note += f"; workers ready {min(ready):.0f}-{max(ready):.0f} ms after their start"
                if dep.workers == 1 and dep.worker_kind == "process":
                    base[(dep.model, protocol)] = (rss0, pss0, procs)
                elif dep.worker_kind == "interpreter" and (dep.model, protocol) in base:
                    rss_1 = base[(dep.model, protocol)][0]
                    note += (f"; each of the {dep.workers} interpreter workers adds {(rss0 - rss_1) / dep.workers:.1f} MiB "
                             "RSS over the one-process engine (one process: each worker imports the lab again, "
                             "nothing is shared copy-on-write)")
                elif dep.worker_kind == "thread" and (dep.model, protocol) in base:
                    rss_1 = base[(dep.model, protocol)][0]
                    note += (f"; each of the {dep.workers} thread workers adds {(rss0 - rss_1) / dep.workers:.1f} MiB "
                             "RSS over the one-process engine (one process: the modules are shared, each worker "
                             "builds its own app, loop and stacks)")
                elif (dep.model, protocol) in base:  # what each extra process costs, idle
                    rss_1, pss_1, procs_1 = base[(dep.model, protocol)]
                    extra_procs = max(1, procs - procs_1)  # the workers beyond one, and the supervisor
                    note += (f"; each of the {extra_procs} extra processes (supervisor included) adds "
                             f"{(pss0 - pss_1) / extra_procs:.1f} MiB PSS ({(rss0 - rss_1) / extra_procs:.1f} MiB RSS, "
                             "copy-on-write pages counted in full)")
                rows.append(_row(cfg, "connections", engine, "plaintext", len(held), result, None,
                                 server_cores(), "held connections: memory and fds per connection",
                                 f"{n} held", not error if error else None, note + (f"; {error}" if error else ""),
                                 protocol=protocol, duration=opened_s, workers=dep.workers))
    return rows


# -- deploy -------------------------------------------------------------------------------------

def _cpu_service_ms(cfg: Config) -> tuple[float, str]:
    """One /cpu's service time (ms) for deploy's offered rate: the cores experiment's one-core
    rows of this Python, one core's worth of /cpu per request (1000 / req/s on one core, the
    median over the one-process models and rounds); without them, the median of 31 sequential
    requests to selectors after a warm-up."""
    path = os.path.join(cfg.results, "cores.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            found = [1000.0 / float(r["rps"]) for r in csv.DictReader(f)
                     if r["law"] == "control: one core" and r["rps"] and float(r["rps"]) > 0
                     and r["engine"] in ("selectors", "asyncio")
                     and r.get("python", interpreters.current().label) == interpreters.current().label]
        if found:
            from loadtest.report import stats  # the one place for intervals

            ci = stats.median_ci(found)
            return ci.median, (f"cores.csv one-core rate of selectors and asyncio: {ci.median:.2f} "
                               f"[{ci.low:.2f}, {ci.high:.2f}] ms, n = {ci.n}")
    with running(_spec("selectors"), None, cfg.log_dir, server_env(), 30) as server:
        warm_up(server, "/cpu")
        return statistics.median(_probe_path(server.port, "/cpu", 31)), "selectors, median of 31 sequential"


def run_deploy(cfg: Config) -> list[dict]:
    """``deploy``: the mixed workload (90 % /plaintext, 10 % /cpu) open loop at one fixed rate,
    every deployment (module docstring)."""
    seconds = 2.0 if cfg.quick else min(cfg.duration, 10.0)
    out_dir = latency_dir(cfg.results, interpreters.current().label)
    os.makedirs(out_dir, exist_ok=True)
    rows: list[dict] = []
    cpu_ms, source = _cpu_service_ms(cfg)
    rate = round(DEPLOY_CPU_LOAD / (0.10 * cpu_ms / 1000.0))
    for dep in deployments(cfg):
        with running(deployment_spec(dep), None, cfg.log_dir, server_env(), 60) as server:
            warm_up(server)
            prefix = os.path.join(out_dir, f"deploy-{safe_name(dep.name)}")
            s, cpu_s = _measured(server, lambda: _open_loop(server.port, "cpu10", rate, seconds, prefix, None,
                                                            user="h1user.py"))
        achieved = s.rps
        held = achieved >= 0.95 * rate
        note = (f"one /cpu takes {cpu_ms:.2f} ms ({source}); offered {rate} req/s puts {DEPLOY_CPU_LOAD:g} of a "
                f"core into /cpu; achieved {achieved:.0f}; late {s.detail.get('late', 0)}; p99.9 {s.p999_ms} ms")
        rows.append(_row(cfg, "deploy", dep.name, "cpu10", LATENCY_USERS, s, cpu_s, server_cores(),
                         "open loop at a fixed rate: achieved >= 95 % of offered; p99 from the intended send time",
                         f"offered {rate} req/s", held, note, protocol="h1 open loop", duration=seconds,
                         workers=dep.workers))
    return rows
