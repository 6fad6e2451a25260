"""The ``cost`` and ``multiplex`` experiments: wrk and h2load against the engines and the peers,
through the runner of ``python -m loadtest.bench`` (its server table, its wrk/h2load runs and
parsers: written once, there).

``cost``       What does each model's machinery cost per request? wrk (HTTP/1.1, 64 connections)
               and h2load (h2c, ``-c 64 -m 1`` and ``-c 8 -m 16``) on /plaintext, /json, a small
               static file (/static/hello.txt) and /static/1mb.bin; the server pinned to one core,
               the generator to another. Peers in the same run: uvicorn (h11, httptools),
               hypercorn, gunicorn gthread and granian serving a **bare** callable that answers
               ``Hello, World!`` (loadtest/harness/peers.py) on /plaintext -- what a user would pick
               instead; and, as a second labelled line (``+app``), uvicorn, hypercorn and granian
               serving the lab's app through app/asgi.py on every route. Ratio rows check the
               targets: best engine >= 1.0x uvicorn-httptools (h1), best engine >= 0.8x granian
               (h2c -m16), threadpool >= 1.5x gunicorn gthread (h1): the best engine and the peer
               measured again back to back, three rounds, the median ratio. ``--quick``: /plaintext,
               wrk and h2c -m16, one second each, the engines and the three peers of the targets.
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
import statistics
import tempfile

from protocol.h2_settings import H2Config

from loadtest import bench
from loadtest.experiments.base import HYBRIDS, Config, _row, _workers, interpreter_workers
from loadtest.harness import interpreters
from loadtest.harness.servers import ServerSpec

__all__ = ["run_cost", "run_multiplex", "COST_ROUTES", "multiplex_law"]

COST_ROUTES = (("plaintext", "/plaintext"), ("json", "/json"), ("static", "/static/hello.txt"),
               ("static-1mb", "/static/1mb.bin"))
#: (protocol label, bench mode, wrk connections or h2load clients, h2load streams per client)
COST_GENERATORS = (("h1", "h1", 64, 1), ("h2c -m1", "h2", 64, 1), ("h2c -m16", "h2", 8, 16))


def _args(mode: str, path: str, duration: int, warmup: int, clients: int, streams: int) -> object:
    argv = [mode, "--path", path, "--duration", str(duration), "--warmup", str(warmup)]
    argv += ["--connections", str(clients)] if mode == "h1" else ["--clients", str(clients), "--streams", str(streams)]
    args = bench.build_parser().parse_args(argv)  # the engines run on their defaults, as a user starts them
    bench.pin_cores(args)
    return args


def _measure_row(cfg: Config, experiment: str, protocol: str, workload: str, users: int, mode: str,
                 spec: ServerSpec, args: object, tmp: str, env: dict, law: str = "", expected: str = "",
                 expect_rps: float | None = None) -> dict:
    r = bench.measure(mode, spec, 0, args, tmp, env)
    result = {"requests": r.requests, "rps": r.rps, "p50_ms": r.p50_ms if r.p50_ms is not None else r.mean_ms,
              "p99_ms": r.p99_ms, "max_ms": (r.detail or {}).get("max_ms")}
    notes = []
    if not r.ok:
        notes.append(f"failed: {r.error[:120]}")
    if r.client_cpu is not None and r.client_cpu >= bench.SATURATED:
        notes.append("generator saturated: a floor")
    if r.non2xx or r.socket_errors:
        notes.append(f"{r.non2xx} non-2xx, {r.socket_errors} socket errors")
    if mode == "h2":
        notes.append("p50_ms is h2load's mean")
    held = None
    if expect_rps is not None and r.ok:
        w = users / expect_rps  # W = N / X, s
        if mode == "h1":  # wrk counts X (1 - W / T) over its window (experiments.window_expected)
            expect_rps *= max(0.0, 1.0 - w / args.duration)
        if mode == "h1" and w > args.duration / 10:  # wrk: see experiments.steady (expect_rps may be 0)
            notes.append(f"not judged: W = N / X = {w:.2f} s is over a tenth of the run")
        else:
            held = abs(r.rps - expect_rps) <= 0.10 * expect_rps
        if held is False:
            notes.append(f"{r.rps / expect_rps:.2f}x the law")
    cores = 1 if args.server_core is not None else (os.cpu_count() or 1)
    return _row(cfg, experiment, spec.name, workload, users, result, r.server_cpu_s, cores,
                law, expected, held, "; ".join(notes), protocol=protocol, duration=float(args.duration))


def run_cost(cfg: Config) -> list[dict]:
    """``cost``: requests/s and server CPU µs per request, engines and peers (module docstring)."""
    routes = COST_ROUTES[:1] if cfg.quick else COST_ROUTES
    generators = (COST_GENERATORS[0], COST_GENERATORS[2]) if cfg.quick else COST_GENERATORS
    duration, warmup = (1, 0) if cfg.quick else (int(min(cfg.duration, 5)), 1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lab-cost-") as tmp:
        env, data_dir = bench.server_env(tmp)
        for protocol, mode, clients, streams in generators:
            for workload, path in routes:
                args = _args(mode, path, duration, warmup, clients, streams)
                specs = bench.server_specs(args, data_dir)
                interp: list[str] = []
                bare = bench.H1_PEERS if mode == "h1" else bench.H2_PEERS
                app_peers = bench.H1_APP_PEERS if mode == "h1" else bench.H2_APP_PEERS
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
                names = [*cfg.engines, *interp, *(bare if workload == "plaintext" else ()), *app_peers]
                names = [n for n in names if specs[n].kind == "engine" or _available(specs[n])]
                for name in names:
                    rows.append(_measure_row(cfg, "cost", protocol, workload, clients * streams, mode, specs[name],
                                             args, tmp, env, "requests/s on one core; CPU µs per request"))
        rows += _ratio_rows(cfg, rows, tmp, env, data_dir, duration, warmup)
    return rows


#: the generator each of bench's RATIOS (the targets) is judged with: its protocol label
_TARGET_PROTOCOL = {"h1": "h1", "h2": "h2c -m16"}
#: rounds of the target pairs (engine, peer measured back to back); the ratio is their median
TARGET_ROUNDS = 3


def _ratio_rows(cfg: Config, rows: list[dict], tmp: str, env: dict, data_dir: str, duration: int,
                warmup: int) -> list[dict]:
    """The targets: best engine (or threadpool) over a peer, /plaintext. The best engine is
    the one with the most requests/s in the table; it and the peer are then measured again,
    back to back, ``TARGET_ROUNDS`` times (``--quick``: the table's runs), and the ratio is the median
    of the per-round ratios (bench's ``--repeat``): one 5 s run each swung by up to 15 % on
    the shared VM, which a ratio of two single runs doubles."""
    out = []
    by_mode = {label: (mode, clients, streams) for label, mode, clients, streams in COST_GENERATORS}
    for compared, peer, mode, target in bench.RATIOS:
        engines = tuple(e for e in compared if e in cfg.engines)
        protocol = _TARGET_PROTOCOL[mode]
        pick = [r for r in rows if r["workload"] == "plaintext" and r["protocol"] == protocol]
        peer_row = next((r for r in pick if r["engine"] == peer and r["rps"]), None)
        ours = [r for r in pick if r["engine"] in engines and r["rps"]]
        if peer_row is None or not ours:
            continue
        best = max(ours, key=lambda r: r["rps"])
        ratios = [best["rps"] / peer_row["rps"]] if cfg.quick else []  # quick: the table's runs
        if not cfg.quick:
            mode, clients, streams = by_mode[protocol]
            args = _args(mode, "/plaintext", duration, warmup, clients, streams)
            specs = bench.server_specs(args, data_dir)
            for _ in range(TARGET_ROUNDS):
                a = bench.measure(mode, specs[best["engine"]], 0, args, tmp, env)
                b = bench.measure(mode, specs[peer], 0, args, tmp, env)
                if a.ok and b.ok and a.rps and b.rps:
                    ratios.append(a.rps / b.rps)
        if not ratios:
            continue
        ratio = statistics.median(ratios)
        label = compared[0] if len(compared) == 1 else f"best engine ({best['engine']})"
        rounds = " ".join(f"{x:.3f}" for x in ratios)
        out.append(_row(cfg, "cost", f"{label} / {peer}", "plaintext", best["users"],
                        {"requests": None, "rps": round(ratio, 3)}, None, best["server_cpus"],
                        "ratio of requests/s in the same run" + ("" if cfg.quick else f", median of {TARGET_ROUNDS}"
                                                                  " back-to-back rounds") + " (rps column: the ratio)",
                        f">= {target:g}x", ratio >= target,
                        f"ratio {ratio:.3f}, rounds {rounds}; table {best['rps']:.0f} / {peer_row['rps']:.0f} req/s",
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
    shapes = ((1, 128), (128, 1)) if cfg.quick else ((1, 128), (4, 32), (16, 8), (64, 2), (128, 1))
    routes = (("io", "/io?ms=100"),) if cfg.quick else (("io", "/io?ms=100"), ("plaintext", "/plaintext"))
    duration, warmup = (2, 1) if cfg.quick else (int(min(cfg.duration, 5)), 1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lab-multiplex-") as tmp:
        env, data_dir = bench.server_env(tmp)
        for workload, path in routes:
            runs = [("h1 -c128", "h1", 128, 1)] + [(f"h2c -c{c} -m{m}", "h2", c, m) for c, m in shapes]
            for protocol, mode, clients, streams in runs:
                args = _args(mode, path, duration, warmup, clients, streams)
                specs = bench.server_specs(args, data_dir)
                for engine in cfg.engines:
                    spec = specs[engine]
                    if engine in ("threadpool", "processpool"):  # the L of the law, stated
                        spec = _with_workers(spec, _workers(engine), "--threads" if engine == "threadpool" else "--workers")
                    law = expect = None
                    if workload == "io":
                        expect = multiplex_law(engine, clients, streams)
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
