"""The lab's engines against established servers, with a generator-independent load tool.

Usage::

    python -m loadtest.bench h1 [--duration 10] [--connections 64] [--threads 1] [--repeat 3]
                                [--engines selectors,asyncio] [--peers uvicorn-h11] [--json FILE]
    python -m loadtest.bench h2 [--duration 10] [--clients 8] [--streams 16] [--requests N]

For each server in turn (the four engines through ``./start_server``, then the peers), on a free
port of 127.0.0.1: start it pinned to one core (``taskset -c 0``: the whole process tree, so
processpool's workers share that core), poll its port until it accepts, check one ``GET
/plaintext`` (h1), warm up, then measure with ``wrk`` (h1) or ``h2load`` (h2, HTTP/2 prior
knowledge, h2c) pinned to another core (``taskset -c 1``); stop it with SIGTERM to the process group
it leads (SIGKILL after a grace period), never touching processes this harness did not start.

Peers serve the bare callables of ``loadtest/harness/peers.py`` (``Hello, World!``, no routing): what a user
would pick instead, on equal terms. h1: ``uvicorn-h11`` and ``uvicorn-httptools`` (one process,
``--loop asyncio`` like the asyncio engine unless ``--uvicorn-loop``), ``hypercorn`` (no cap on
requests per connection), ``gunicorn-gthread`` (``--workers 1 --threads 16``, WSGI) and ``granian``
(ASGI, one worker). h2 (h2c): ``hypercorn`` and ``granian``. The same peers serving the lab's own app
through ``app/asgi.py`` are named with ``+app`` (``uvicorn-httptools+app``, ...), on request.

This is the ``cost`` experiment's runner (``python -m loadtest experiment cost`` measures every route
and generator with these servers and these functions); this command is its one-route preset.

Printed: machine, Python and git revision; per server the median over ``--repeat`` rounds of
requests/s and latency percentiles, errors, the server's and the generator's CPU use (a generator
near 100% of its core measures itself: flagged); and the ratios of engine to peer, taken within
each round and then the median (DESIGN.md, "Measuring honestly").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table

from engines import ENGINES

from loadtest.harness import interpreters
from loadtest.harness.servers import HOST, ROOT, RunningServer, ServerSpec, check_plaintext, pinned, running
from loadtest.harness.generators import BenchError, parse_h2load, parse_wrk, run_tool

__all__ = ["Result", "server_specs", "measure", "machine_info", "report", "build_parser", "main",
           "server_env", "pin_cores", "ENGINES", "H1_PEERS", "H2_PEERS", "H1_APP_PEERS", "H2_APP_PEERS", "RATIOS"]

#: peers serving the bare callables of loadtest/harness/peers.py: what a user would pick instead
H1_PEERS = ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "gunicorn-gthread", "granian")
H2_PEERS = ("hypercorn", "granian")
#: the same peers serving the lab's own app through app/asgi.py (a second, labelled line)
H1_APP_PEERS = ("uvicorn-h11+app", "uvicorn-httptools+app", "hypercorn+app", "granian+app")
H2_APP_PEERS = ("hypercorn+app", "granian+app")
from loadtest.harness.peers import HYPERCORN_CONFIG  # noqa: E402
#: (engines, peer, mode, target): the best of ``engines`` (requests/s) divided by the peer's, in
#: the same round; the targets of the experiments issue (docs/experiments.md).
RATIOS = ((ENGINES, "uvicorn-httptools", "h1", 1.0), (ENGINES, "granian", "h2", 0.8),
          (("threadpool",), "gunicorn-gthread", "h1", 1.5))
SATURATED = 0.90  # generator CPU share of its core above which a run is flagged

# -- servers -------------------------------------------------------------------------------------

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
class Result:
    """One server measured once (one round)."""

    server: str
    kind: str
    round: int
    ok: bool = False
    error: str = ""
    rps: float = 0.0
    requests: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    non2xx: int = 0
    socket_errors: int = 0
    detail: dict = field(default_factory=dict)
    server_cpu: float | None = None   # share of one core during the measured run
    server_cpu_s: float | None = None  # the server tree's user + system CPU seconds in the measured run
    client_cpu: float | None = None   # the generator's share of one core (per thread: see notes)
    startup_s: float | None = None
    affinity: list[int] = field(default_factory=list)
    processes: int = 0


def _load(mode: str, srv: RunningServer, args: argparse.Namespace) -> tuple[str, float, float, float, float]:
    """Check, warm up and load one running server. Returns (tool output, the server's CPU
    seconds during the measured run, its wall seconds, tool CPU seconds, tool wall seconds).

    Raises:
        BenchError: wrong answer, tool failure, or the server died.
    """
    url = f"http://{HOST}:{srv.port}{args.path}"
    if mode == "h1":
        check_plaintext(srv.port, args.path)
        base = ["wrk", f"-t{args.threads}", f"-c{args.connections}", "--latency",
                "--timeout", f"{args.request_timeout}s"]
        if args.warmup > 0:
            run_tool(pinned([*base, f"-d{args.warmup}s", url], args.client_core), args.warmup + 30)
        cmd = pinned([*base, f"-d{args.duration}s", url], args.client_core)
        budget = args.duration + 30
    else:
        base = ["h2load", f"-c{args.clients}", f"-m{args.streams}", f"-t{args.threads}",
                f"-T{args.request_timeout}", "-N5"]
        if args.requests:
            cmd = pinned([*base, f"-n{args.requests}", url], args.client_core)
            budget = args.timeout
        else:
            cmd = pinned([*base, f"-D{args.duration}", f"--warm-up-time={args.warmup}", url], args.client_core)
            budget = args.duration + args.warmup + 30
    cpu0, t0 = srv.cpu_seconds(), time.monotonic()
    out, tool_cpu, wall = run_tool(cmd, budget)
    cpu1, t1 = srv.cpu_seconds(), time.monotonic()
    if srv.proc.poll() is not None:
        raise BenchError(f"server died during the run (status {srv.proc.returncode})")
    return out, cpu1 - cpu0, t1 - t0, tool_cpu, wall


def measure(mode: str, spec: ServerSpec, rnd: int, args: argparse.Namespace, log_dir: str, env: dict) -> Result:
    """Start, check, warm up, measure and stop one server; never raises BenchError."""
    res = Result(server=spec.name, kind=spec.kind, round=rnd)
    try:
        with running(spec, args.server_core, log_dir, env, args.start_timeout) as srv:
            try:
                out, cpu_s, cpu_wall, tool_cpu, wall = _load(mode, srv, args)
            except BenchError as exc:
                tail = srv.log_tail(3)
                raise BenchError(f"{exc}" + (f"; server log: {tail}" if tail else "")) from None
            res.startup_s = srv.startup_s
            res.affinity = srv.affinity()
            res.processes = len(srv.tree())
            res.server_cpu = cpu_s / cpu_wall if cpu_wall > 0 else None
            res.server_cpu_s = cpu_s
        parsed = parse_wrk(out) if mode == "h1" else parse_h2load(out)
        res.detail = parsed
        res.rps = parsed["rps"]
        res.requests = parsed.get("requests")
        res.p50_ms, res.p99_ms, res.mean_ms = parsed.get("p50_ms"), parsed.get("p99_ms"), parsed.get("mean_ms")
        res.non2xx = parsed.get("non2xx", 0)
        res.socket_errors = parsed.get("socket_errors", 0) + parsed.get("errored", 0) + parsed.get("timeout", 0)
        res.client_cpu = tool_cpu / wall / max(1, args.threads) if wall > 0 else None
        if mode == "h2" and not parsed.get("succeeded"):
            res.error = f"no request succeeded: {out.strip().splitlines()[-1] if out.strip() else ''}"[:200]
        else:
            res.ok = True
    except BenchError as exc:
        res.error = str(exc)[:400]
    except OSError as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:400]
    return res


# -- report --------------------------------------------------------------------------------------

def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict:
    """CPU model, core count, kernel, Python, git revision (``-dirty`` with local changes), tools."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    rev = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no") or _git("ls-files", "--others", "--exclude-standard"):
        rev += "-dirty"

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "missing"
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]

    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": f"{platform.python_implementation()} {platform.python_version()}", "git": rev,
            "wrk": version(["wrk", "-v"]), "h2load": version(["h2load", "--version"]),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def report(console: Console, mode: str, results: list[Result], order: list[str], info: dict,
           args: argparse.Namespace, specs: dict[str, ServerSpec]) -> list[dict]:
    """Print the machine line, the per-server table and (h1) the ratio table; returns the ratios."""
    pin = (f"server on core {args.server_core}, {('wrk' if mode == 'h1' else 'h2load')} on core {args.client_core}"
           if args.server_core is not None else "NOT pinned (--no-pin, no taskset, or fewer than 2 cores)")
    console.print(f"[bold]{info['cpu']}[/], {info['cores']} cores, Linux {info['kernel']}; "
                  f"{info['python']}; git {info['git']}; {info['time']}")
    load = (f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s (warm-up {args.warmup}s) GET {args.path}"
            if mode == "h1" else
            f"h2load -c{args.clients} -m{args.streams} -t{args.threads} "
            + (f"-n{args.requests}" if args.requests else f"-D{args.duration} --warm-up-time={args.warmup}")
            + f" GET {args.path} (h2c, prior knowledge)")
    console.print(f"{load}; {pin}; median of {args.repeat} round(s)")
    table = Table(title=f"{mode}: {args.path}", title_justify="left")
    table.add_column("server")
    table.add_column("req/s", justify="right")
    if mode == "h1":
        table.add_column("p50", justify="right")
        table.add_column("p99", justify="right")
    else:
        table.add_column("mean", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("server CPU", justify="right")
    table.add_column("gen CPU", justify="right")
    table.add_column("procs", justify="right")
    table.add_column("runs ok", justify="right")
    table.add_column("notes")
    for name in order:
        rs = [r for r in results if r.server == name]
        good = [r for r in rs if r.ok]
        notes = sorted({r.error for r in rs if r.error})
        gen = _median([r.client_cpu for r in good])
        if gen is not None and gen >= SATURATED:
            notes.insert(0, "GENERATOR SATURATED: figure is a floor")
        if args.server_core is not None and any(r.affinity and r.affinity != [args.server_core] for r in good):
            notes.append(f"server ran on cores {sorted({c for r in good for c in r.affinity})}")
        errors = sum(r.non2xx + r.socket_errors for r in good)
        details = sorted({r.detail.get("socket_error_detail", "") for r in good} - {""})
        if details:
            notes.append("socket errors: " + "; ".join(details))
        row = [f"{name}" + (" [dim](peer)[/]" if specs[name].kind == "peer" else ""),
               _fmt(_median([r.rps for r in good]), ",.0f")]
        if mode == "h1":
            row += [_fmt(_median([r.p50_ms for r in good]), ".2f", " ms"),
                    _fmt(_median([r.p99_ms for r in good]), ".2f", " ms")]
        else:
            row += [_fmt(_median([r.mean_ms for r in good]), ".2f", " ms")]
        note = "; ".join(notes)
        row += [str(errors) if good else "-",
                _fmt(_median([r.server_cpu for r in good]), ".0%"), _fmt(gen, ".0%"),
                str(max((r.processes for r in good), default=0) or "-"), f"{len(good)}/{len(rs)}", note if len(note) <= 160 else note[:157] + "..."]
        table.add_row(*row)
    console.print(table)
    ratios: list[dict] = []
    rt = Table(title="ratios (per round, then the median)", title_justify="left")
    for col in ("engine / peer", "ratio", "target", "verdict", "per round"):
        rt.add_column(col, justify="right" if col in ("ratio", "target") else "left")
    for engines, peer, ratio_mode, target in RATIOS:
        engines = [e for e in engines if e in order]
        if ratio_mode != mode or not engines or peer not in order:
            continue
        per_round = []
        for rnd in range(args.repeat):
            best = max((r.rps for r in results if r.server in engines and r.round == rnd and r.ok), default=None)
            b = next((r for r in results if r.server == peer and r.round == rnd and r.ok), None)
            if best and b and b.rps > 0:
                per_round.append(best / b.rps)
        ratio = _median(per_round)
        name = engines[0] if len(engines) == 1 else "best engine"
        verdict = "-" if ratio is None else ("[green]meets[/]" if ratio >= target else "[red]below[/]")
        rt.add_row(f"{name} / {peer}", _fmt(ratio, ".2f", "x"), f">= {target:g}x", verdict,
                   " ".join(f"{x:.2f}" for x in per_round))
        ratios.append({"engine": name, "peer": peer, "ratio": ratio, "target": target, "per_round": per_round})
    if ratios:
        console.print(rt)
    return ratios


# -- command line ----------------------------------------------------------------------------------

def _names(text: str | None, allowed: tuple[str, ...], default: tuple[str, ...], what: str,
           parser: argparse.ArgumentParser) -> list[str]:
    if text is None:
        return list(default)
    if text.strip().lower() in ("", "none"):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        parser.error(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return names


def build_parser() -> argparse.ArgumentParser:
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.repeat, args.duration, args.connections, args.threads, args.clients, args.streams) < 1:
        parser.error("--repeat, --duration, --connections, --threads, --clients, --streams must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    engines = _names(args.engines, ENGINES, ENGINES, "engines", parser)
    if args.mode == "h1":
        peers = _names(args.peers, H1_PEERS + H1_APP_PEERS, H1_PEERS, "peers", parser)
    else:
        peers = _names(args.peers, H2_PEERS + H2_APP_PEERS, H2_PEERS, "peers", parser)
    order = engines + peers
    if not order:
        parser.error("nothing to measure")
    tool = "wrk" if args.mode == "h1" else "h2load"
    if shutil.which(tool) is None:
        parser.error(f"{tool} is not installed")
    try:
        pin_cores(args)
    except ValueError as exc:
        parser.error(str(exc))
    console = Console(width=None if sys.stdout.isatty() else 150)
    info = machine_info()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        env, data_dir = server_env(tmp)
        specs = server_specs(args, data_dir)
        try:
            for rnd in range(args.repeat):
                for name in order:
                    console.print(f"[dim]round {rnd + 1}/{args.repeat}: {name} ...[/]", end=" ")
                    r = measure(args.mode, specs[name], rnd, args, tmp, env)
                    console.print(f"[dim]{r.rps:,.0f} req/s[/]" if r.ok else f"[red]failed[/] {r.error[:160]}")
                    results.append(r)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: partial results[/]")
    ratios = report(console, args.mode, results, order, info, args, specs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "machine": info, "args": vars(args),
                       "servers": {n: specs[n].description for n in order},
                       "results": [asdict(r) for r in results], "ratios": ratios}, f, indent=2)
    return 0 if any(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
