"""Processpool: workers sharing one accept queue against a SO_REUSEPORT listener per worker.

Usage::

    python -m loadtest.experiments.reuseport [--workers 2] [--duration 5] [--json results/reuseport/reuseport.json]

Both modes are measured in the same run, the server pinned to core 0 and the generators to
core 1 (on a machine with one core, unpinned). For each mode:

1. spread: ``--burst`` connections opened at once, then each asks ``GET /_conn`` which worker
   (pid) serves it: connections per worker, and the busiest worker's share (1/workers is even).
2. load: wrk ``-c --connections`` on ``/io?ms=10`` for ``--duration`` s: req/s, p50, p99, max.
   A wait per request makes an uneven spread visible: a worker holding more connections queues
   them (Little's law: each worker serves at most 100 req/s here).
3. stalled: one worker stopped (SIGSTOP) while wrk runs again with new connections
   (``-c --connections``, 2 s timeout), then ``--probes`` new connections one by one, each
   given 2 s to answer: with a shared queue the live worker takes every new connection; with
   SO_REUSEPORT the kernel keeps hashing some to the stopped worker's queue, where they wait
   (Cloudflare, "Why does one NGINX worker take all the load?", 2017).

Prints a table and writes JSON (``--json``) with the command, the machine and every figure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from loadtest.harness.servers import HOST, ROOT, ServerSpec, running
from loadtest.harness.generators import BenchError, Result, parse_wrk, pinned, run_tool, wrk_command

__all__ = ["spread", "wrk_run", "measure_mode", "main"]


def spread(port: int, burst: int) -> dict[int, int]:
    """Open ``burst`` connections at once, then ask each which worker serves it: ``{pid: n}``.

    Raises:
        OSError: a connection failed.
    """
    socks = [socket.create_connection((HOST, port), timeout=10) for _ in range(burst)]
    try:
        for s in socks:
            s.sendall(b"GET /_conn HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        counts: collections.Counter = collections.Counter()
        for s in socks:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            counts[json.loads(data.split(b"\r\n\r\n", 1)[1])["pid"]] += 1
        return dict(counts)
    finally:
        for s in socks:
            s.close()


def stalled_waits(port: int, count: int, timeout_s: float = 2.0) -> int:
    """Open ``count`` new connections (one after another) and ask each for ``/plaintext``: how
    many got no answer within ``timeout_s`` s (they sit in a stopped worker's accept queue)."""
    waiting = 0
    for _ in range(count):
        with socket.create_connection((HOST, port), timeout=timeout_s) as s:
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
            try:
                if not s.recv(1):
                    waiting += 1
            except socket.timeout:
                waiting += 1
    return waiting


def wrk_run(port: int, connections: int, duration: float, core: int | None, path: str) -> Result:
    """wrk on ``path`` -> :func:`parse_wrk`'s result."""
    cmd = pinned(wrk_command(f"http://{HOST}:{port}{path}", connections, duration, timeout_s=2), core)
    out, _, _ = run_tool(cmd, timeout=duration + 30)
    return parse_wrk(out)


def measure_mode(reuse_port: bool, args: argparse.Namespace, cores: tuple[int | None, int | None],
                 log_dir: str) -> dict:
    """Start processpool in one mode, measure spread, load and stalled; always stop it."""
    flags = ["--reuse-port"] if reuse_port else []
    spec = ServerSpec(name="processpool-reuseport" if reuse_port else "processpool-shared", kind="engine",
                      argv=lambda port: [sys.executable, os.path.join(ROOT, "start_server"), "--engine",
                                         "processpool", "--port", str(port), "--workers", str(args.workers),
                                         "--log-level", "WARNING", *flags])
    with running(spec, cores[0], log_dir, dict(os.environ), 30) as server:
        deadline = time.monotonic() + 10
        while len(server.tree()) < args.workers + 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # a poll of the process table: forks have no event
        workers = [p.pid for p in server.tree() if p.pid != server.proc.pid]
        counts = spread(server.port, args.burst)
        load = asdict(wrk_run(server.port, args.connections, args.duration, cores[1], "/io?ms=10"))
        os.kill(workers[0], signal.SIGSTOP)
        try:
            stalled = asdict(wrk_run(server.port, args.connections, args.duration, cores[1], "/io?ms=10"))
            stalled["new_connections_waiting"] = stalled_waits(server.port, args.probes)
        finally:
            os.kill(workers[0], signal.SIGCONT)
    per_worker = [counts.get(pid, 0) for pid in workers]
    return {"mode": "reuse-port" if reuse_port else "shared", "workers": args.workers,
            "spread": per_worker, "busiest_share": round(max(per_worker) / max(1, sum(per_worker)), 3),
            "load": load, "stalled": stalled}


def main(argv: list[str] | None = None) -> int:
    """Run both modes; print the table; write ``--json``. Returns 0, or 1 on a BenchError."""
    p = argparse.ArgumentParser(prog="python -m loadtest.experiments.reuseport", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="processpool workers (default: %(default)s)")
    p.add_argument("--burst", type=int, default=200, help="connections opened at once (default: %(default)s)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default: %(default)s)")
    p.add_argument("--duration", type=float, default=5, help="wrk seconds per run (default: %(default)s)")
    p.add_argument("--probes", type=int, default=20,
                   help="new connections tried one by one while a worker is stopped (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    cpus = os.cpu_count() or 1
    cores = (0, 1) if cpus >= 2 else (None, None)
    console = Console(width=160)
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        try:
            for reuse_port in (False, True):
                rows.append(measure_mode(reuse_port, args, cores, log_dir))
        except BenchError as exc:
            console.print(f"[red]failed: {exc}[/red]")
            return 1
    table = Table(title=f"processpool, {args.workers} workers: shared accept queue vs SO_REUSEPORT")
    for col in ("mode", "connections per worker (burst)", "busiest share", "req/s", "p99", "max",
                "stalled: req/s", "stalled: p99", "stalled: wrk timeouts", "stalled: new conns unanswered"):
        table.add_column(col, justify="right")
    for r in rows:
        load, st = r["load"], r["stalled"]
        table.add_row(r["mode"], " / ".join(map(str, r["spread"])), f"{r['busiest_share']:.0%}",
                      f"{load['rps']:,.0f}", f"{load['p99_ms'] or 0:.1f} ms", f"{load['max_ms'] or 0:.1f} ms",
                      f"{st['rps']:,.0f}", f"{st['p99_ms'] or 0:.1f} ms", st["detail"]["socket_error_detail"] or "0",
                      f"{st['new_connections_waiting']} of {args.probes}")
    console.print(table)
    if len(rows) == 2:
        console.print(f"reuse-port / shared: req/s {rows[1]['load']['rps'] / rows[0]['load']['rps']:.2f}x, "
                      f"busiest share {rows[1]['busiest_share']:.0%} vs {rows[0]['busiest_share']:.0%}")
    if args.json:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        meta = {"command": "python -m loadtest.experiments.reuseport " + " ".join(argv if argv is not None else sys.argv[1:]),
                "git": rev, "cpus": cpus, "python": platform.python_version(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server_core": cores[0], "wrk_core": cores[1]}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
