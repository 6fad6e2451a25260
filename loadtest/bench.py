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
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from loadtest.experiments.cost import (ENGINES, H1_APP_PEERS, H1_PEERS, H2_APP_PEERS, H2_PEERS, RATIOS, SATURATED,
                                       ServerRun, ServerSpec, measure, pin_cores, runner_parser, server_env,
                                       server_specs)
from loadtest.harness.machine import machine_info

__all__ = ["report", "build_parser", "main", "machine_info"]

#: the command line: the cost experiment's runner options
build_parser = runner_parser


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def report(console: Console, mode: str, results: list[ServerRun], order: list[str], info: dict,
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
        errors = sum(r.load.non2xx + r.load.failures for r in good)
        details = sorted({r.load.detail.get("socket_error_detail", "") for r in good} - {""})
        if details:
            notes.append("socket errors: " + "; ".join(details))
        row = [f"{name}" + (" [dim](peer)[/]" if specs[name].kind == "peer" else ""),
               _fmt(_median([r.load.rps for r in good]), ",.0f")]
        if mode == "h1":
            row += [_fmt(_median([r.load.p50_ms for r in good]), ".2f", " ms"),
                    _fmt(_median([r.load.p99_ms for r in good]), ".2f", " ms")]
        else:
            row += [_fmt(_median([r.load.mean_ms for r in good]), ".2f", " ms")]
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
            best = max((r.load.rps for r in results if r.server in engines and r.round == rnd and r.ok), default=None)
            b = next((r for r in results if r.server == peer and r.round == rnd and r.ok), None)
            if best and b and b.load.rps > 0:
                per_round.append(best / b.load.rps)
        ratio = _median(per_round)
        name = engines[0] if len(engines) == 1 else "best engine"
        verdict = "-" if ratio is None else ("[green]meets[/]" if ratio >= target else "[red]below[/]")
        rt.add_row(f"{name} / {peer}", _fmt(ratio, ".2f", "x"), f">= {target:g}x", verdict,
                   " ".join(f"{x:.2f}" for x in per_round))
        ratios.append({"engine": name, "peer": peer, "ratio": ratio, "target": target, "per_round": per_round})
    if ratios:
        console.print(rt)
    return ratios


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
    results: list[ServerRun] = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        env, data_dir = server_env(tmp)
        specs = server_specs(args, data_dir)
        try:
            for rnd in range(args.repeat):
                for name in order:
                    console.print(f"[dim]round {rnd + 1}/{args.repeat}: {name} ...[/]", end=" ")
                    r = measure(args.mode, specs[name], rnd, args, tmp, env)
                    console.print(f"[dim]{r.load.rps:,.0f} req/s[/]" if r.ok else f"[red]failed[/] {r.error[:160]}")
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
