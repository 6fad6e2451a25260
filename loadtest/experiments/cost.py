"""The ``cost`` and ``multiplex`` experiments: wrk and h2load against the engines and the peers,
through the runner of ``python -m loadtest.bench`` (its server table, its wrk/h2load runs and
parsers: written once, there).

``cost``       What does each model's machinery cost per request? wrk (HTTP/1.1, 64 connections)
               and h2load (h2c, ``-c 8 -m 16``) on /plaintext and /json, 3 s windows after a
               separate 1 s warm-up; the server pinned to one core, the generator to another.
               Peers in the same round: uvicorn (h11, httptools), hypercorn, gunicorn gthread and
               granian serving a **bare** callable that answers ``Hello, World!``
               (loadtest/harness/peers.py) on /plaintext -- what a user would pick instead; and,
               as a second labelled line (``+app``), uvicorn, hypercorn and granian serving the
               lab's app through app/asgi.py on every route. Ratio rows check the targets, one
               per round: best engine >= 1.0x uvicorn-httptools (h1), best engine >= 0.8x granian
               (h2c -m16), threadpool >= 1.5x gunicorn gthread (h1); the report pairs the rounds.
               ``--quick``: 1 s windows, no warm-up, the engines and the three peers of the targets.
``multiplex``  When does HTTP/2 multiplexing help? h2load ``-c C -m M`` with C x M = 128 held
               constant, on /io?ms=100 and /plaintext, against wrk with 128 HTTP/1.1
               connections. Law on /io (Little's): X = L / 0.1 s, where L is what the model can
               hold at once: 128 for the loops; threadpool min(32 workers, C x 8) (one
               connection's streams get at most a quarter of the pool); processpool one wait per
               worker process, min(C, P); HTTP/1.1 the same with M = 1; M counts up to the
               server's SETTINGS_MAX_CONCURRENT_STREAMS (100).
"""

from __future__ import annotations

import os
import tempfile

import argparse
import shutil
import time
from dataclasses import dataclass, field, replace

from engines import ENGINES
from protocol.h2_settings import H2Config

from loadtest.experiments.base import (CONTROL, HYBRIDS, Config, _row, _workers, control_name, interpreter_workers,
                                       failure, original)
from loadtest.harness import interpreters, noise
from loadtest.harness.generators import (BenchError, Result, h2load_command, parse_h2load, parse_wrk, pinned,
                                         run_tool, wrk_command)
from loadtest.harness.peers import HYPERCORN_CONFIG
from loadtest.harness.servers import HOST, ROOT, RunningServer, ServerSpec, check_plaintext, running

__all__ = ["run_cost", "run_multiplex", "COST_ROUTES", "multiplex_law", "ServerRun", "server_specs", "server_env",
           "pin_cores", "measure", "runner_parser", "ENGINES", "H1_PEERS", "H2_PEERS", "H1_APP_PEERS",
           "H2_APP_PEERS", "RATIOS", "SATURATED"]

#: the routes of the reference run (the static ones: ``python -m loadtest.bench h1 --path /static/1mb.bin``)
COST_ROUTES = (("plaintext", "/plaintext"), ("json", "/json"))
#: (protocol label, bench mode, wrk connections or h2load clients, h2load streams per client)
COST_GENERATORS = (("h1", "h1", 64, 1), ("h2c -m16", "h2", 8, 16))
#: seconds of each cost and multiplex window (the rounds, not a long window, give the interval)
WINDOW_S = 3


def _args(mode: str, path: str, duration: int, warmup: int, clients: int, streams: int) -> object:
    argv = [mode, "--path", path, "--duration", str(duration), "--warmup", str(warmup)]
    argv += ["--connections", str(clients)] if mode == "h1" else ["--clients", str(clients), "--streams", str(streams)]
    args = runner_parser().parse_args(argv)  # the engines run on their defaults, as a user starts them
    pin_cores(args)
    return args


def _measure_row(cfg: Config, experiment: str, protocol: str, workload: str, users: int, mode: str,
                 spec: ServerSpec, args: object, tmp: str, env: dict, law: str = "", expected: str = "",
                 expect_rps: float | None = None) -> dict:
    r = measure(mode, spec, 0, args, tmp, env)
    result = r.load if r.load.p50_ms is not None else replace(r.load, p50_ms=r.load.mean_ms)
    notes = []
    if not r.ok:  # no figure: the row says failed and why, never 0 req/s
        result = replace(result, requests=0)
        notes.append(f"failed: {r.error[:120]}")
    if r.client_cpu is not None and r.client_cpu >= SATURATED:
        notes.append("generator saturated: a floor")
    if result.non2xx or result.failures:
        notes.append(f"{result.non2xx} non-2xx, {result.failures} socket errors")
    if mode == "h2":
        notes.append("p50_ms is h2load's mean")
    held = None
    if expect_rps is not None and r.ok:
        w = users / expect_rps  # W = N / X, s
        # wrk and h2load alike count X (1 - W / T) over their window (experiments.window_expected),
        # and are judged only where the requests in flight at the end are a small part of it
        expect_rps *= max(0.0, 1.0 - w / args.duration)
        if w > args.duration / 10:  # see experiments.steady (expect_rps may be 0)
            notes.append(f"not judged: W = N / X = {w:.2f} s is over a tenth of the run")
        else:
            held = abs(result.rps - expect_rps) <= 0.10 * expect_rps
        if held is False:
            notes.append(f"{result.rps / expect_rps:.2f}x the law")
    cores = 1 if args.server_core is not None else (os.cpu_count() or 1)
    return _row(cfg, experiment, spec.name, workload, users, result, r.server_cpu_s, cores,
                law, expected, held, "; ".join(notes), protocol=protocol, duration=float(args.duration))


def run_cost(cfg: Config) -> list[dict]:
    """``cost``: requests/s and server CPU µs per request, engines and peers (module docstring)."""
    routes = COST_ROUTES[:1] if cfg.quick else COST_ROUTES
    generators = COST_GENERATORS
    duration, warmup = (1, 0) if cfg.quick else (int(min(cfg.duration, WINDOW_S)), 1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lab-cost-") as tmp:
        env, data_dir = server_env(tmp)
        for protocol, mode, clients, streams in generators:
            for workload, path in routes:
                args = _args(mode, path, duration, warmup, clients, streams)
                specs = server_specs(args, data_dir)
                interp: list[str] = []
                bare = H1_PEERS if mode == "h1" else H2_PEERS
                app_peers = H1_APP_PEERS if mode == "h1" else H2_APP_PEERS
                if cfg.quick:
                    bare = tuple(p for p in bare if p in ("uvicorn-httptools", "gunicorn-gthread", "granian"))
                    app_peers = ()
                # one interpreter worker (3.14): what running in a subinterpreter costs a request
                if interpreters.current().interpreter_workers and workload == "plaintext":
                    for engine in cfg.engines:
                        if engine in HYBRIDS:
                            dep = interpreter_workers(engine, 1)
                            specs[dep.name] = _with_workers(specs[engine], None, extra=(
                                "--workers", "1", "--worker-kind", "interpreter"), name=dep.name)
                            interp.append(dep.name)
                if cfg.control and cfg.engines:  # the A/A twin: the same server under a second name
                    twin = control_name(cfg)
                    specs[twin] = replace(specs[original(twin)], name=twin)
                names = [*cfg.engine_names(), *interp, *(bare if workload == "plaintext" else ()), *app_peers]
                names = cfg.order([n for n in names if specs[n].kind == "engine" or _available(specs[n])],
                                  f"cost {protocol} {workload}")
                for name in names:
                    rows.append(_measure_row(cfg, "cost", protocol, workload, clients * streams, mode, specs[name],
                                             args, tmp, env, "requests/s on one core; CPU µs per request"))
        rows += _ratio_rows(cfg, rows, tmp, env, data_dir, duration, warmup)
    return rows


#: the generator each of bench's RATIOS (the targets) is judged with: its protocol label
_TARGET_PROTOCOL = {"h1": "h1", "h2": "h2c -m16"}
def _ratio_rows(cfg: Config, rows: list[dict], tmp: str, env: dict, data_dir: str, duration: int,
                warmup: int) -> list[dict]:
    """The targets: best engine (or threadpool) over a peer, /plaintext, this round's ratio. The
    best engine is the one with the most requests/s in this round's table; the ratio is its
    requests/s over the peer's, both measured in this round. The report pairs the rounds
    (loadtest/report/stats.py: the median of the per-round ratios and its interval) and judges the
    target by that interval; no extra runs are made (one 5 s run swings by up to 15 % here, which
    is why the rounds, not one pair, decide)."""
    out = []
    for compared, peer, mode, target in RATIOS:
        engines = tuple(e for e in compared if e in cfg.engines)
        protocol = _TARGET_PROTOCOL[mode]
        pick = [r for r in rows if r["workload"] == "plaintext" and r["protocol"] == protocol]
        peer_row = next((r for r in pick if r["engine"] == peer and r["rps"]), None)
        ours = [r for r in pick if r["engine"] in engines and r["rps"]]
        if peer_row is None or not ours:
            continue
        ours = [r for r in ours if not r["engine"].endswith(CONTROL)]
        if not ours:
            continue
        best = max(ours, key=lambda r: r["rps"])
        ratio = best["rps"] / peer_row["rps"]
        label = compared[0] if len(compared) == 1 else "best engine"
        out.append(_row(cfg, "cost", f"{label} / {peer}", "plaintext", best["users"],
                        Result(rps=round(ratio, 3)), None, best["server_cpus"],
                        "ratio of requests/s in the same round (rps column: the ratio; the report pairs the rounds)",
                        f">= {target:g}x", ratio >= target,
                        f"this round: {best['engine']} {best['rps']:.0f} / {peer} {peer_row['rps']:.0f} req/s",
                        protocol=protocol))
    return out


def multiplex_law(engine: str, connections: int, streams: int, wait_s: float = 0.1) -> float:
    """Little's law for /io at ``connections`` x ``streams`` requests in flight (req/s); a
    connection carries at most the server's SETTINGS_MAX_CONCURRENT_STREAMS (100) at once."""
    streams = min(streams, H2Config().max_concurrent_streams) if streams > 1 else streams
    n = connections * streams
    if engine == "threadpool":
        held = min(_workers(engine) or 32, connections * min(streams, (_workers(engine) or 32) // 4))
    elif engine == "processpool":
        held = min(connections, _workers(engine) or 2)
    else:
        held = n
    return held / wait_s


def run_multiplex(cfg: Config) -> list[dict]:
    """``multiplex``: C x M = 128 over h2c against 128 HTTP/1.1 connections (module docstring)."""
    shapes = ((1, 128), (128, 1)) if cfg.quick else ((1, 128), (4, 32), (16, 8), (128, 1))
    routes = (("io", "/io?ms=100"),) if cfg.quick else (("io", "/io?ms=100"), ("plaintext", "/plaintext"))
    duration, warmup = (2, 1) if cfg.quick else (int(min(cfg.duration, WINDOW_S)), 1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lab-multiplex-") as tmp:
        env, data_dir = server_env(tmp)
        for workload, path in routes:
            runs = [("h1 -c128", "h1", 128, 1)] + [(f"h2c -c{c} -m{m}", "h2", c, m) for c, m in shapes]
            for protocol, mode, clients, streams in runs:
                args = _args(mode, path, duration, warmup, clients, streams)
                specs = server_specs(args, data_dir)
                for engine in cfg.engine_names():
                    spec = replace(specs[original(engine)], name=engine)
                    if original(engine) in ("threadpool", "processpool"):  # the L of the law, stated
                        spec = _with_workers(spec, _workers(engine),
                                             "--threads" if original(engine) == "threadpool" else "--workers")
                    law = expect = None
                    if workload == "io":
                        expect = multiplex_law(original(engine), clients, streams)
                        law = "X = L / 0.1 s (module docstring)"
                    rows.append(_measure_row(cfg, "multiplex", protocol, workload, clients * streams, mode, spec,
                                             args, tmp, env, law or "", f"{expect:.0f} req/s" if expect else "",
                                             expect))
    return rows


def _with_workers(spec: ServerSpec, workers: int | None, option: str = "--workers",
                  extra: tuple[str, ...] = (), name: str | None = None) -> ServerSpec:
    """``spec`` with ``option workers`` added (``--threads`` for threadpool's pool), or ``extra``
    options, under ``name``."""
    if workers is None and not extra:
        return spec
    added = list(extra) if workers is None else [option, str(workers), *extra]
    return ServerSpec(name=name or spec.name, kind=spec.kind, argv=lambda port: [*spec.argv(port), *added],
                      description=f"{spec.description} {' '.join(added)}")


def _available(spec: ServerSpec) -> bool:
    """Whether the servers' Python can start peer ``spec`` (``python -m MODULE``)."""
    argv = spec.argv(0)
    module = argv[argv.index("-m") + 1] if "-m" in argv else None
    return module is None or interpreters.current().has(module)

# -- the runner: the servers compared on one core, one wrk / h2load measurement of one -------------
# (also ``python -m loadtest.bench``, the one-route preset of this experiment)

#: peers serving the bare callables of loadtest/harness/peers.py: what a user would pick instead
H1_PEERS = ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "gunicorn-gthread", "granian")
H2_PEERS = ("hypercorn", "granian")
#: the same peers serving the lab's own app through app/asgi.py (a second, labelled line)
H1_APP_PEERS = ("uvicorn-h11+app", "uvicorn-httptools+app", "hypercorn+app", "granian+app")
H2_APP_PEERS = ("hypercorn+app", "granian+app")
#: (engines, peer, mode, target): the best of ``engines`` (requests/s) divided by the peer's, in
#: the same round; the targets of the experiments issue (docs/experiments.md).
RATIOS = ((ENGINES, "uvicorn-httptools", "h1", 1.0), (ENGINES, "granian", "h2", 0.8),
          (("threadpool",), "gunicorn-gthread", "h1", 1.5))
SATURATED = 0.90  # generator CPU share of its core above which a run is flagged

# -- servers----------------------------------------------------------------------------------

def server_specs(args: argparse.Namespace, data_dir: str) -> dict[str, ServerSpec]:
    """Every server this harness knows, by name."""
    py = interpreters.python()
    specs: dict[str, ServerSpec] = {}
    for engine in ENGINES:
        extra = (["--workers", str(args.workers)] if args.workers else []) + list(args.engine_arg or [])

        def engine_argv(port: int, engine: str = engine, extra: list[str] = extra) -> list[str]:
            return [py, os.path.join(ROOT, "start_server"), "--engine", engine, "--host", HOST,
                    "--port", str(port), "--log-level", "WARNING", "--data-dir", data_dir, *extra]

        specs[engine] = ServerSpec(name=engine, kind="engine", argv=engine_argv,
                                   description=f"./start_server --engine {engine} {' '.join(extra)}".strip())
    bare, lab = "loadtest.harness.peers:plaintext_asgi", "app.asgi:create"
    for suffix, target in (("", bare), ("+app", lab)):
        what = "loadtest/harness/peers.py's bare ASGI callable" if not suffix else "the lab's app through app/asgi.py"
        factory = ["--factory"] if suffix else []
        for http in ("h11", "httptools"):
            def uvicorn_argv(port: int, http: str = http, target: str = target, factory: list = factory) -> list[str]:
                return [py, "-m", "uvicorn", target, *factory, "--host", HOST, "--port", str(port), "--http", http,
                        "--loop", args.uvicorn_loop, "--no-access-log", "--log-level", "warning", "--lifespan", "off"]

            specs[f"uvicorn-{http}{suffix}"] = ServerSpec(
                name=f"uvicorn-{http}{suffix}", kind="peer", argv=uvicorn_argv,
                description=f"uvicorn --http {http} --loop {args.uvicorn_loop}, 1 process, {what}")
        specs[f"hypercorn{suffix}"] = ServerSpec(
            name=f"hypercorn{suffix}", kind="peer",
            argv=lambda port, target=target, suffix=suffix: [
                py, "-m", "hypercorn", target + ("()" if suffix else ""), "--bind", f"{HOST}:{port}", "--workers",
                "1", "--log-level", "warning", "--config", HYPERCORN_CONFIG],
            description=f"hypercorn (asyncio worker), 1 process, {what}, loadtest/harness/hypercorn.toml "
                        "(no cap on requests per connection); h2c prior knowledge")
        specs[f"granian{suffix}"] = ServerSpec(
            name=f"granian{suffix}", kind="peer",
            argv=lambda port, target=target, factory=factory: [
                py, "-m", "granian", "--interface", "asgi", *factory, "--host", HOST, "--port", str(port),
                "--workers", "1", "--no-ws", "--http", "auto", "--log-level", "warning", target],
            description=f"granian --interface asgi --workers 1 --http auto, {what}")
    specs["gunicorn-gthread"] = ServerSpec(
        name="gunicorn-gthread", kind="peer",
        argv=lambda port: [py, "-m", "gunicorn", "-k", "gthread", "--workers", "1", "--threads", "16",
                           "--bind", f"{HOST}:{port}", "--log-level", "warning",
                           "loadtest.harness.peers:plaintext_wsgi"],
        description="gunicorn -k gthread --workers 1 --threads 16, loadtest/harness/peers.py's bare WSGI callable")
    return specs


def server_env(tmp: str) -> tuple[dict, str]:
    """The environment every server runs in (the lab importable, its data in ``tmp/data``,
    unbuffered output) and that data folder."""
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    env["LAB_DATA_DIR"] = data_dir
    env.setdefault("LAB_WWW", os.path.join(ROOT, "www"))
    env["PYTHONUNBUFFERED"] = "1"
    return env, data_dir


def pin_cores(args: argparse.Namespace) -> None:
    """Set ``args.server_core`` / ``args.client_core`` to None when pinning is off or impossible
    (``--no-pin``, no taskset, fewer than two usable cores)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.no_pin or shutil.which("taskset") is None or len(cores) < 2:
        args.server_core = args.client_core = None
    elif args.server_core not in cores or args.client_core not in cores or args.server_core == args.client_core:
        raise ValueError(f"--server-core and --client-core must be two different cores of {cores}")


# -- one measurement -----------------------------------------------------------------------------

@dataclass(kw_only=True)
class ServerRun:
    """One server measured once (one round): the generator's :class:`Result` (``load``; empty
    when the run failed) and what the harness measured around it."""

    server: str
    kind: str
    round: int
    ok: bool = False
    error: str = ""
    load: Result = field(default_factory=Result)
    server_cpu: float | None = None   # share of one core during the measured run
    server_cpu_s: float | None = None  # the server tree's user + system CPU seconds in the measured run
    client_cpu: float | None = None   # the generator's share of one core (per thread: see notes)
    startup_s: float | None = None
    affinity: list[int] = field(default_factory=list)
    processes: int = 0


def _load(mode: str, srv: RunningServer, args: argparse.Namespace
          ) -> tuple[str, float, float, float, float, noise.Reading]:
    """Check, warm up and load one running server. Returns (tool output, the server's CPU
    seconds during the measured run, its wall seconds, tool CPU seconds, tool wall seconds, the
    window's noise). The CPU window holds exactly the counted requests: the warm-up is a separate
    run before it, for wrk and h2load alike. A noisy window is measured again (``noise.RERUNS``).

    Raises:
        BenchError: wrong answer, tool failure, or the server died.
    """
    url = f"http://{HOST}:{srv.port}{args.path}"
    if mode == "h1":
        check_plaintext(srv.port, args.path)
        def wrk(seconds: float) -> list[str]:
            return pinned(wrk_command(url, args.connections, seconds, threads=args.threads,
                                      timeout_s=args.request_timeout), args.client_core)
        if args.warmup > 0:
            run_tool(wrk(args.warmup), args.warmup + 30)
        cmd = wrk(args.duration)
        budget = args.duration + 30
    else:
        def h2load(seconds: float | None) -> list[str]:
            # no --warm-up-time: h2load's warm-up would fall inside the server's CPU window but
            # not in its request count (every saturated h2c row read ~1.2 cores on one core)
            return pinned(h2load_command(url, args.clients, streams=args.streams, threads=args.threads,
                                         timeout_s=args.request_timeout, extra=["-N5"],
                                         requests=None if seconds else args.requests or None,
                                         duration_s=seconds or (None if args.requests else args.duration)),
                          args.client_core)
        if args.warmup > 0:  # a separate, discarded run, as wrk's
            run_tool(h2load(args.warmup), args.warmup + 30)
        cmd = h2load(None)
        budget = args.timeout if args.requests else args.duration + 30
    for attempt in range(noise.RERUNS + 1):  # a noisy window is measured again
        window = noise.Window()
        cpu0, t0 = srv.cpu_seconds(), time.monotonic()
        out, tool_cpu, wall = run_tool(cmd, budget)
        cpu1, t1 = srv.cpu_seconds(), time.monotonic()
        reading = window.close(cpu1 - cpu0, attempt)
        if srv.proc.poll() is not None:
            raise BenchError(f"server died during the run (status {srv.proc.returncode})")
        if not reading.noisy:
            break
    return out, cpu1 - cpu0, t1 - t0, tool_cpu, wall, reading


def measure(mode: str, spec: ServerSpec, rnd: int, args: argparse.Namespace, log_dir: str, env: dict) -> ServerRun:
    """Start, check, warm up, measure and stop one server; never raises BenchError."""
    res = ServerRun(server=spec.name, kind=spec.kind, round=rnd)
    try:
        with running(spec, args.server_core, log_dir, env, args.start_timeout) as srv:
            try:
                out, cpu_s, cpu_wall, tool_cpu, wall, reading = _load(mode, srv, args)
            except BenchError as exc:
                tail = srv.log_tail(3)
                raise BenchError(f"{exc}" + (f"; server log: {tail}" if tail else "")) from None
            res.startup_s = srv.startup_s
            res.affinity = srv.affinity()
            res.processes = len(srv.tree())
            res.server_cpu = cpu_s / cpu_wall if cpu_wall > 0 else None
            res.server_cpu_s = cpu_s
        res.load = parse_wrk(out) if mode == "h1" else parse_h2load(out)
        res.load.detail["noise"] = reading
        res.client_cpu = tool_cpu / wall / max(1, args.threads) if wall > 0 else None
        if mode == "h2" and not res.load.detail.get("succeeded"):
            res.error = f"no request succeeded: {out.strip().splitlines()[-1] if out.strip() else ''}"[:200]
        else:
            res.ok = True
    except BenchError as exc:
        res.error = str(exc)[:400]
    except OSError as exc:
        res.error = failure(exc)[:400]
    return res


def runner_parser() -> argparse.ArgumentParser:
    """The runner's options (``python -m loadtest.bench``'s command line): one route, one generator."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench", description=(
        "Measure the four engines and peer servers with wrk (h1) or h2load (h2), server and "
        "generator pinned to different cores."))
    p.add_argument("mode", choices=("h1", "h2"), help="h1: wrk over HTTP/1.1; h2: h2load over h2c")
    p.add_argument("--duration", type=int, default=10, help="measured seconds per server (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds, not measured (default: %(default)s)")
    p.add_argument("--connections", type=int, default=64, help="h1: wrk connections (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="generator threads (default: %(default)s)")
    p.add_argument("--clients", type=int, default=8, help="h2: h2load clients (connections) (default: %(default)s)")
    p.add_argument("--streams", type=int, default=16, help="h2: concurrent streams per client (default: %(default)s)")
    p.add_argument("--requests", type=int, default=0, help="h2: a fixed request count (-n) instead of --duration")
    p.add_argument("--repeat", type=int, default=1, help="rounds; figures are medians (default: %(default)s)")
    p.add_argument("--engines", default=None, help=f"comma-separated subset of {','.join(ENGINES)}, or none")
    p.add_argument("--peers", default=None,
                   help=f"comma-separated peers, or none (h1: {','.join(H1_PEERS + H1_APP_PEERS)}, "
                        f"default {','.join(H1_PEERS)}; h2: {','.join(H2_PEERS + H2_APP_PEERS)}, "
                        f"default {','.join(H2_PEERS)})")
    p.add_argument("--path", default="/plaintext", help="request path (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="--workers for the engines (default: their own)")
    p.add_argument("--engine-arg", action="append", metavar="ARG",
                   help="an extra ./start_server argument for every engine, repeatable "
                        "(e.g. --engine-arg=--loop --engine-arg=uvloop)")
    p.add_argument("--uvicorn-loop", choices=("asyncio", "uvloop", "auto"), default="asyncio",
                   help="uvicorn's event loop (default: %(default)s, like the asyncio engine's default)")
    p.add_argument("--server-core", type=int, default=0, help="core the server tree is pinned to (default: 0)")
    p.add_argument("--client-core", type=int, default=1, help="core the generator is pinned to (default: 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin (figures then include contention)")
    p.add_argument("--request-timeout", type=int, default=5, help="generator's per-request timeout, s (default: 5)")
    p.add_argument("--start-timeout", type=float, default=30, help="s for a server to open its port (default: 30)")
    p.add_argument("--timeout", type=float, default=300, help="h2 -n runs: s before h2load is killed (default: 300)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write machine, results and ratios as JSON")
    return p


