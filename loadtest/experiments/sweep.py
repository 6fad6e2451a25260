"""Sweeps: every combination of engine, protocol, workload and user count, measured the same way.

Usage::

    python -m loadtest sweep                    # the small default set (about 5 min on 2 cores)
    python -m loadtest sweep --engines threadpool,selectors --protocols h1,h2c,h2 --workloads io,plaintext \\
        --users 1,10,50,200 --duration 30 --repeat 3 [--processes N] [--tool locust|wrk|h2load] [--streams K]
    python -m loadtest sweep --engines uvicorn-httptools+app,hypercorn+app --protocols h1 --workloads plaintext

For each combination (and each ``--repeat`` round), one run:

1. start the server on a free port of 127.0.0.1: ``./start_server --engine E`` (``--tls`` for the ``h2``
   protocol, ``--workers``/``--engine-arg`` as given) or a peer serving the lab's app through
   ``app/asgi.py`` (``uvicorn-httptools+app``: HTTP/1.1 only; ``hypercorn+app``: h1, h2c and h2 with the dev
   certificate; the names of the cost experiment's "+app" peers);
   pinned to the first core when there are two or more (``taskset``), the generator to the others;
2. poll its port until it accepts;
3. load it: locust headless (``h1`` -> ``loadtest/h1user.py``; ``h2c``/``h2`` -> ``loadtest/h2user.py``
   with ``--h2-streams K``) for spawn + ``--warmup`` + ``--duration`` seconds, statistics reset when the
   warm-up ends (``--warmup-s``), CSVs written by locust itself; or ``wrk`` (h1 only; a Lua ``done()``
   prints the percentiles) / ``h2load`` (``--h1`` for h1; percentiles from its ``--log-file``), after
   a warm-up, as a generator-independent ceiling;
4. sample, every ``--sample-interval`` s and at the measured window's edges, the server's process tree
   (CPU seconds, RSS, threads, established connections to its port) and the generator's tree
   (CPU seconds), with psutil;
5. stop the server with SIGTERM to the process group it leads (its pid), SIGKILL after a grace period;
6. write ``results/runs/<run-id>/`` (the generator's CSVs or report, the server's log,
   ``samples.csv``, ``meta.json`` with the commands, engine options, git revision, Python, CPU model
   and core count) and append one row to ``results/summary.csv`` (``SUMMARY_COLUMNS``).

Columns of ``results/summary.csv``: ``run_id, engine, protocol, workload, users, streams, repeat,
duration_s, requests, failures, rps, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms, server_cpu_pct,
server_rss_mb, generator_cpu_pct, generator_saturated, git_rev, python, cpu``. ``repeat`` is the round
index (0 .. --repeat-1), for medians and min-max over rounds; ``duration_s`` is the measured window
(s); latencies are ms (locust's percentiles are its own, rounded to two significant digits);
``server_cpu_pct`` and ``generator_cpu_pct`` are percent of one core over the window (can exceed 100
with several processes); ``server_rss_mb`` is the peak of the tree's summed RSS (MiB);
``generator_saturated`` is 1 when the generator used at least ``SATURATED`` of the cores it could use:
such a row measures the generator, not the server (DESIGN.md, "Measuring honestly").
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engines import ENGINES

from loadtest.experiments.cost import server_specs
from loadtest.harness import interpreters, measure
from loadtest.harness.servers import HOST, ROOT, free_port
from loadtest.harness.generators import BenchError

__all__ = ["SUMMARY_COLUMNS", "ENGINES", "PEERS", "PROTOCOLS", "TOOLS", "SATURATED", "RunSpec", "SweepError",
           "build_parser", "plan", "run_one", "read_summary", "main"]

#: the peers serving the lab's app through app/asgi.py, named as the cost experiment names them
PEERS = ("uvicorn-httptools+app", "hypercorn+app")
PROTOCOLS = ("h1", "h2c", "h2")
TOOLS = ("locust", "wrk", "h2load")
SATURATED = measure.SATURATED
SUMMARY_COLUMNS = ["run_id", "engine", "protocol", "workload", "users", "streams", "repeat", "duration_s",
                   "requests", "failures", "rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms",
                   "server_cpu_pct", "server_rss_mb", "generator_cpu_pct", "generator_saturated", "git_rev",
                   "python", "cpu"]
DEFAULTS = {"engines": "threadpool,processpool,selectors,asyncio", "protocols": "h1,h2c",
            "workloads": "plaintext,io", "users": "10,50"}


class SweepError(Exception):
    """The sweep cannot start (bad arguments for this machine, a summary.csv of another schema)."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: which server, which protocol and workload, how many users and streams."""

    engine: str
    protocol: str
    workload: str
    users: int
    streams: int
    repeat: int

    def label(self) -> str:
        return (f"{self.engine} {self.protocol} {self.workload} u={self.users}"
                + (f" k={self.streams}" if self.protocol != "h1" else "") + f" #{self.repeat + 1}")


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise SweepError(f"unknown {what}: {', '.join(bad) or '(none)'} (choose from {', '.join(allowed)})")
    return list(dict.fromkeys(names))


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SweepError(f"{what}: comma-separated integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise SweepError(f"{what}: at least one value, all >= 1")
    return values


def skip_reason(engine: str, protocol: str, tool: str) -> str | None:
    """Why a combination cannot run (None when it can)."""
    if engine == "uvicorn-httptools+app" and protocol != "h1":
        return "uvicorn speaks HTTP/1.1 only"
    if tool == "wrk" and protocol != "h1":
        return "wrk speaks HTTP/1.1 only (use --tool h2load)"
    return None


def plan(args: argparse.Namespace) -> tuple[list[RunSpec], list[str]]:
    """The runs of a sweep in order (rounds outermost, so an interrupted sweep has whole rounds),
    and notes about skipped combinations.

    Raises:
        SweepError: an unknown name or a bad number.
    """
    from loadtest.users.workloads import WORKLOADS

    engines = _names(args.engines, ENGINES + PEERS, "engines")
    protocols = _names(args.protocols, PROTOCOLS, "protocols")
    workloads = _names(args.workloads, WORKLOADS, "workloads")
    users = _ints(args.users, "--users")
    if args.repeat < 1 or args.duration <= 0 or args.streams < 1:
        raise SweepError("--repeat, --duration and --streams must be >= 1")
    runs: list[RunSpec] = []
    notes: list[str] = []
    for rnd in range(args.repeat):
        for engine in engines:
            for protocol in protocols:
                why = skip_reason(engine, protocol, args.tool)
                if why:
                    if rnd == 0:
                        notes.append(f"skipped {engine} {protocol}: {why}")
                    continue
                for workload in workloads:
                    for u in users:
                        runs.append(RunSpec(engine, protocol, workload, u, 1 if protocol == "h1" else args.streams,
                                            rnd))
    return runs, notes


# -- one run -----------------------------------------------------------------------------------------

def server_argv(spec: RunSpec, port: int, args: argparse.Namespace, data_dir: str) -> list[str]:
    """The command that serves the lab's app for ``spec`` on ``port``."""
    py = interpreters.python()
    tls = spec.protocol == "h2"
    if spec.engine in ENGINES:
        argv = [py, os.path.join(ROOT, "start_server"), "--engine", spec.engine, "--host", HOST, "--port",
                str(port), "--log-level", "WARNING", "--data-dir", data_dir]
        if args.workers and spec.engine in ("threadpool", "processpool"):  # the pool's size
            argv += ["--threads" if spec.engine == "threadpool" else "--workers", str(args.workers)]
        return argv + list(args.engine_arg or []) + (["--tls"] if tls else [])
    # the peers: the cost experiment's "+app" servers (uvicorn --http httptools --loop asyncio; hypercorn)
    peer = server_specs(argparse.Namespace(workers=None, engine_arg=None, uvicorn_loop="asyncio"), data_dir)
    argv = peer[spec.engine].argv(port)
    if tls:  # hypercorn+app only (skip_reason keeps uvicorn to h1)
        from engines.listeners import dev_certificate

        certfile, keyfile, _ = dev_certificate()
        argv += ["--certfile", certfile, "--keyfile", keyfile]
    return argv


def _git_rev_python_cpu() -> dict:
    from loadtest.harness.machine import machine_info

    return machine_info()


def run_one(spec: RunSpec, args: argparse.Namespace, info: dict, results_dir: str, data_dir: str,
            cores: tuple[list[int], list[int]] | None, console: Console | None = None) -> dict:
    """Start the server, load it, sample, stop it, write ``runs/<run-id>/``; return the summary row
    (``SUMMARY_COLUMNS``) plus ``_notes``/``_error`` keys (not written to summary.csv).

    Raises:
        BenchError: the server did not start, died, or the generator failed (the run dir keeps
            meta.json with the error).
        KeyboardInterrupt: passed on after the server is stopped.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{spec.engine}-{spec.protocol}-{spec.workload}-u{spec.users}-k{spec.streams}-r{spec.repeat}"
    run_dir = os.path.join(results_dir, "runs", run_id)
    n = 1
    while os.path.exists(run_dir):
        n += 1
        run_dir = os.path.join(results_dir, "runs", f"{run_id}-{n}")
    run_id = os.path.basename(run_dir)
    os.makedirs(run_dir)
    server_core, gen_cores = cores if cores else (None, None)
    port = free_port()
    env = measure.child_env(data_dir)
    meta: dict = {"run_id": run_id, "spec": asdict(spec), "tool": args.tool, "sweep_command": args.command_line,
                  "duration_s_requested": args.duration, "warmup_s": args.warmup,
                  "engine_options": {"workers": args.workers, "engine_arg": list(args.engine_arg or []),
                                     "tls": spec.protocol == "h2", "processes": args.processes},
                  "machine": info, "pinning": {"server_core": server_core, "generator_cores": gen_cores}}
    argv = server_argv(spec, port, args, data_dir)
    meta["server_command"] = argv
    row: dict = {}
    try:
        with measure.Server(argv, port, server_core, os.path.join(run_dir, "server.log"), env) as srv:
            srv.wait_ready(args.start_timeout)
            meta["server_startup_s"] = round(srv.startup_s or 0.0, 3)
            scheme = "https" if spec.protocol == "h2" else "http"
            url = f"{scheme}://{HOST}:{port}"
            load = measure.Load(spec, args, url, run_dir, gen_cores, env)
            meta["generator_command"] = load.command()
            result = load.run(srv)
            meta["server_exit"] = None
        meta["server_exit"] = srv.returncode
        row = {"run_id": run_id, "engine": spec.engine, "protocol": spec.protocol, "workload": spec.workload,
               "users": spec.users, "streams": spec.streams, "repeat": spec.repeat, **result.row(),
               "git_rev": info["git"], "python": info["python"], "cpu": info["cpu"]}
        capacity = load.capacity(len(gen_cores) if gen_cores else os.cpu_count() or 1)
        row["generator_saturated"] = int(row["generator_cpu_pct"] is not None
                                         and row["generator_cpu_pct"] >= SATURATED * 100 * capacity)
        meta.update(window_s=result.window_s, samples=result.sample_summary, generator=asdict(result.load),
                    generator_capacity_cores=capacity, summary_row=row)
        return {**row, "_notes": result.notes}
    except BenchError as exc:
        meta["error"] = str(exc)
        raise
    except KeyboardInterrupt:
        meta["error"] = "interrupted"
        raise
    finally:
        with open(os.path.join(run_dir, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2, default=str)


# -- summary.csv ---------------------------------------------------------------------------------------

def _check_summary(path: str) -> None:
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header != SUMMARY_COLUMNS:
            raise SweepError(f"{path} has other columns ({','.join(header)[:120]}); move it aside")


def append_row(path: str, row: dict) -> None:
    """Append ``row`` to summary.csv (with the header when the file is new), flushed to disk."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in SUMMARY_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def read_summary(path: str) -> list[dict]:
    """The rows of a summary.csv as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- command line --------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest sweep", description=(
        "Start each engine (or peer), load it with locust (or wrk / h2load), sample server and generator, "
        "and append one row per run to results/summary.csv."))
    p.add_argument("--engines", default=DEFAULTS["engines"],
                   help=f"comma-separated, of {','.join(ENGINES + PEERS)} (default: %(default)s)")
    p.add_argument("--protocols", default=DEFAULTS["protocols"],
                   help="h1 (HTTP/1.1), h2c (HTTP/2 prior knowledge), h2 (HTTP/2 over TLS) (default: %(default)s)")
    p.add_argument("--workloads", default=DEFAULTS["workloads"],
                   help="static,plaintext,echo,io,cpu,stream,mixed (default: %(default)s)")
    p.add_argument("--users", default=DEFAULTS["users"],
                   help="user counts (connections for wrk/h2load) (default: %(default)s)")
    p.add_argument("--duration", type=float, default=5, help="measured seconds per run (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=1, help="warm-up seconds before measuring (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of the whole sweep (default: %(default)s)")
    p.add_argument("--processes", type=int, default=0,
                   help="locust --processes N (wrk/h2load: threads) (default: one process)")
    p.add_argument("--tool", choices=TOOLS, default="locust", help="load generator (default: %(default)s)")
    p.add_argument("--streams", type=int, default=1,
                   help="HTTP/2 requests in flight per user or connection (default: %(default)s)")
    p.add_argument("--spawn-rate", type=float, default=0,
                   help="locust users spawned per second (default: all users in the first second)")
    p.add_argument("--workers", type=int, default=None, help="--workers for threadpool/processpool")
    p.add_argument("--engine-arg", action="append", metavar="ARG",
                   help="extra ./start_server argument, repeatable (e.g. --engine-arg=--loop --engine-arg=uvloop)")
    p.add_argument("--results", default=os.path.join(ROOT, "results"),
                   help="results directory (default: results/ of the repository)")
    p.add_argument("--sample-interval", type=float, default=0.5, help="psutil sampling period, s (default: 0.5)")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to different cores")
    p.add_argument("--start-timeout", type=float, default=30, help="s for a server to open its port (default: 30)")
    return p


def pin_cores(no_pin: bool) -> tuple[list[int], list[int]] | None:
    """(server cores, generator cores): the first allowed core and the rest; None when not pinning."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if no_pin or len(cores) < 2 or shutil.which("taskset") is None:
        return None
    return [cores[0]], cores[1:]


def main(argv: list[str] | None = None) -> int:
    """``python -m loadtest sweep``: returns 0 when every run produced a row, 1 when some failed,
    130 when interrupted (rows of completed runs are kept)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = ["python", "-m", "loadtest", "sweep", *argv]
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        runs, notes = plan(args)
        if args.tool != "locust" and shutil.which(args.tool) is None:
            raise SweepError(f"{args.tool} is not installed")
        os.makedirs(os.path.join(args.results, "runs"), exist_ok=True)
        summary = os.path.join(args.results, "summary.csv")
        _check_summary(summary)
    except SweepError as exc:
        parser.error(str(exc))
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    cores = pin_cores(args.no_pin)
    info = _git_rev_python_cpu()
    console.print(f"[bold]{info['cpu']}[/], {info['cores']} cores; {info['python']}; git {info['git']}; "
                  + (f"server on core {cores[0][0]}, generator on {','.join(map(str, cores[1]))}" if cores
                     else "[yellow]not pinned[/]") + f"; {len(runs)} runs with {args.tool} -> {summary}")
    done = failed = 0
    saturated: list[str] = []
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with tempfile.TemporaryDirectory(prefix="lab-sweep-") as data_dir, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[left]}"), console=console, transient=False) as progress:
        task = progress.add_task("sweep", total=len(runs), left="")
        try:
            if cores and mine is not None:  # the sampler beside the generator, not the server
                os.sched_setaffinity(0, cores[1])
            for i, spec in enumerate(runs):
                eta = (len(runs) - i) * (args.duration + args.warmup + 4)
                progress.update(task, description=f"[bold]{spec.label()}[/]",
                                left=f"{len(runs) - i} left, ~{eta / 60:.1f} min")
                try:
                    row = run_one(spec, args, info, args.results, data_dir, cores, console)
                except BenchError as exc:
                    failed += 1
                    progress.console.print(f"[red]failed[/] {spec.label()}: {str(exc)[:200]}")
                else:
                    append_row(summary, row)
                    done += 1
                    flag = ""
                    if row["generator_saturated"]:
                        saturated.append(row["run_id"])
                        flag = " [bold red]GENERATOR SATURATED: a floor, not the server's figure[/]"
                    extra = "; ".join(row.get("_notes") or [])
                    progress.console.print(
                        f"{spec.label()}: [bold]{row['rps']:,.0f} req/s[/], p50 {_ms(row['p50_ms'])}, "
                        f"p99 {_ms(row['p99_ms'])}, {row['failures']} failures / {row['requests']}, "
                        f"server CPU {_pct(row['server_cpu_pct'])}, generator CPU {_pct(row['generator_cpu_pct'])}"
                        + flag + (f" [dim]({extra})[/]" if extra else ""))
                progress.advance(task)
            progress.update(task, description="sweep done", left="")
        except KeyboardInterrupt:
            progress.console.print(f"[yellow]interrupted: {done} completed run(s) kept in {summary}[/]")
            return 130
        finally:
            if cores and mine is not None:
                os.sched_setaffinity(0, mine)
    if saturated:
        console.print(f"[bold red]{len(saturated)} run(s) with a saturated generator[/] (generator_saturated=1): "
                      "compare them with --tool wrk|h2load or --processes N")
    console.print(f"{done} run(s) appended to {summary}" + (f", [red]{failed} failed[/]" if failed else ""))
    return 0 if not failed else 1


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}%"


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
