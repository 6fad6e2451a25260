"""``python -m loadtest h2user-bench``: requests/s of the lab's HTTP/2 locust user (``h2user.py``, on
``protocol.H2ClientConnection``) against a locust user built on httpx with ``http2=True``
(``httpxuser.py``), each a single locust process pinned to one core, against the same server
(pinned to another core), same workload, same users; prints both figures and their ratio
(target: at least 3x).

Usage::

    python -m loadtest h2user-bench [--engine selectors] [--workload plaintext] [--users 10]
                                    [--duration 10] [--streams 1] [--repeat 1] [--protocol h2c|h2]

Each measurement is one sweep run (``loadtest/experiments/sweep.py``'s ``run_one``: server started and polled,
warm-up, locust headless, psutil sampling, server stopped), written under ``--results`` (a temporary
directory unless given) but not appended to results/summary.csv. With ``--repeat`` the ratio is taken
within each round, then the median is printed. A generator that is not near 100 % of its core is
limited by the server, not by itself: then the ratio understates the user's speed (flagged).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from rich.console import Console
from rich.table import Table

from loadtest.experiments import sweep
from loadtest.harness.generators import BenchError

__all__ = ["build_parser", "main", "TARGET"]

TARGET = 3.0
USERS = (("h2user", "h2user.py", "h2user (H2ClientConnection)"),
         ("httpx", "httpxuser.py", "httpx (http2=True)"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest h2user-bench", description=(
        "requests/s of loadtest/h2user.py vs an httpx http2=True locust user, one core each, same server"))
    p.add_argument("--engine", default="selectors", choices=sweep.ENGINES + ("hypercorn",),
                   help="server (default: %(default)s)")
    p.add_argument("--protocol", default="h2c", choices=("h2c", "h2"), help="(default: %(default)s)")
    p.add_argument("--workload", default="plaintext", help="(default: %(default)s)")
    p.add_argument("--users", type=int, default=10, help="locust users (default: %(default)s)")
    p.add_argument("--streams", type=int, default=1,
                   help="h2user's --h2-streams (httpx: 1 request at a time) (default: %(default)s)")
    p.add_argument("--duration", type=float, default=10, help="measured s per run (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up s (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=1, help="rounds; ratio = median of per-round ratios")
    p.add_argument("--workers", type=int, default=None, help="--workers for threadpool/processpool")
    p.add_argument("--results", default=None, help="keep the runs' directories here (default: a temp dir)")
    return p


def _sweep_args(args: argparse.Namespace, userfile: str, argv: list[str]) -> argparse.Namespace:
    ns = sweep.build_parser().parse_args([])
    ns.tool, ns.processes, ns.duration, ns.warmup = "locust", 0, args.duration, args.warmup
    ns.workers, ns.userfile = args.workers, userfile
    ns.command_line = ["python", "-m", "loadtest", "h2user-bench", *argv]
    return ns


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 when the median ratio meets ``TARGET``, 1 otherwise or on failure."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    info = sweep._git_rev_python_cpu()
    cores = sweep.pin_cores(False)
    console.print(f"[bold]{info['cpu']}[/], {info['cores']} cores; {info['python']}; git {info['git']}; "
                  + (f"server on core {cores[0][0]}, locust (1 process) on core {cores[1][0]}" if cores
                     else "[yellow]not pinned[/]"))
    if cores:
        cores = (cores[0], cores[1][:1])
    rows: dict[str, list[dict]] = {name: [] for name, _, _ in USERS}
    with tempfile.TemporaryDirectory(prefix="lab-userbench-") as tmp:
        results = args.results or tmp
        for rnd in range(args.repeat):
            for name, userfile, _ in USERS:
                spec = sweep.RunSpec(args.engine, args.protocol, args.workload, args.users,
                                     args.streams if name == "h2user" else 1, rnd)
                console.print(f"[dim]round {rnd + 1}/{args.repeat}: {name} ...[/]", end=" ")
                try:
                    row = sweep.run_one(spec, _sweep_args(args, userfile, argv), info, results, tmp, cores)
                except BenchError as exc:
                    console.print(f"[red]failed[/] {exc}")
                    return 1
                console.print(f"[dim]{row['rps']:,.0f} req/s, generator CPU {row['generator_cpu_pct']:.0f}%[/]")
                rows[name].append(row)
    table = Table(title=f"{args.engine} {args.protocol} {args.workload}, {args.users} users, "
                        f"{args.duration:g} s, median of {args.repeat}", title_justify="left")
    for col in ("user", "req/s", "p50", "p99", "failures", "generator CPU", "server CPU", "notes"):
        table.add_column(col, justify="left" if col in ("user", "notes") else "right")
    for name, _, what in USERS:
        rs = rows[name]
        gen = statistics.median(r["generator_cpu_pct"] or 0 for r in rs)
        note = "" if gen >= 85 else "below its core: server-bound, the ratio understates"
        table.add_row(f"{what}" + (f", --h2-streams {args.streams}" if name == "h2user" else ""),
                      f"{statistics.median(r['rps'] for r in rs):,.0f}",
                      f"{statistics.median(r['p50_ms'] or 0 for r in rs):.1f} ms",
                      f"{statistics.median(r['p99_ms'] or 0 for r in rs):.1f} ms",
                      str(sum(r["failures"] for r in rs)), f"{gen:.0f}%",
                      f"{statistics.median(r['server_cpu_pct'] or 0 for r in rs):.0f}%", note)
    console.print(table)
    ratios = [a["rps"] / b["rps"] for a, b in zip(rows["h2user"], rows["httpx"]) if b["rps"] > 0]
    ratio = statistics.median(ratios) if ratios else 0.0
    verdict = "[green]meets[/]" if ratio >= TARGET else "[red]below[/]"
    console.print(f"h2user / httpx = [bold]{ratio:.2f}x[/] (target >= {TARGET:g}x: {verdict}); per round: "
                  + " ".join(f"{r:.2f}" for r in ratios))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
