"""Reading results/summary.csv: typed rows, repeats folded into medians with min-max, run metadata.

``python -m loadtest sweep`` appends one row per run to ``results/summary.csv`` (columns in
``loadtest/experiments/sweep.py``'s ``SUMMARY_COLUMNS``) and writes ``results/runs/<run_id>/meta.json``. This module
turns those into what the charts, ``results/REPORT.md`` and the notebook read:

- ``load_summary(path)``: the rows as a ``pandas.DataFrame`` with numeric columns as floats,
  ``generator_saturated`` as bool and a derived ``req_per_cpu_s`` (requests per server CPU-second,
  ``rps / (server_cpu_pct / 100)``);
- ``aggregate(df)``: one row per configuration (``GROUP`` = engine, protocol, workload, users, streams),
  repeats folded into ``<metric>`` (median), ``<metric>_min`` and ``<metric>_max``, with ``runs`` (how many
  repeats) and ``saturated_runs`` (how many of them had a saturated load generator). A configuration with
  any saturated repeat is ``saturated``: its figures measure the generator as much as the server
  (DESIGN.md, "Measuring honestly"), so charts mark it and findings say so;
- ``machine(df, runs_dir)``: the machine, Python and git revision(s) the rows came from;
- ``littles_law(agg, ...)``: the io workload's throughput against Little's law, X = min(N, W) / wait.

Units follow summary.csv: requests/s, milliseconds (``*_ms``), percent of one core (``*_pct``), MiB.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse

import pandas as pd

__all__ = ["GROUP", "METRICS", "ENGINE_ORDER", "PEERS", "PROTOCOL_ORDER", "WORKLOAD_ORDER", "DEFAULT_WORKERS",
           "load_summary", "aggregate", "engines_in", "ordered", "machine", "run_meta", "io_wait_s",
           "workers_for", "littles_law", "peak", "highest_users", "common_users"]

GROUP = ["engine", "protocol", "workload", "users", "streams"]
METRICS = ["rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "server_cpu_pct",
           "server_rss_mb", "generator_cpu_pct", "req_per_cpu_s", "requests", "failures", "duration_s"]
PEERS = ("uvicorn-httptools+app", "hypercorn+app")  # the sweep's peers (loadtest/experiments/sweep.py)
ENGINE_ORDER = ["threadpool", "processpool", "selectors", "asyncio", *PEERS]
PROTOCOL_ORDER = ["h1", "h2c", "h2"]
WORKLOAD_ORDER = ["static", "plaintext", "echo", "io", "cpu", "stream", "mixed"]
# The engines' own defaults when a run's meta.json says workers=None (engines/threadpool.py: 32 threads;
# engines/processpool.py: one process per CPU, filled in from the run's machine in workers_for).
DEFAULT_WORKERS = {"threadpool": 32}
_NUMERIC = ["users", "streams", "repeat", "duration_s", "requests", "failures", "rps", "p50_ms", "p90_ms",
            "p95_ms", "p99_ms", "p999_ms", "max_ms", "server_cpu_pct", "server_rss_mb", "generator_cpu_pct"]
_TRUE = {"1", "true", "yes", "y", "t"}


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return str(value).strip().lower() in _TRUE or (str(value).strip().replace(".", "", 1).isdigit()
                                                   and float(value) > 0)


def load_summary(path: str) -> pd.DataFrame:
    """Read a summary.csv into a DataFrame (one row per run).

    Numeric columns become floats (an empty cell is NaN), ``users``/``streams`` ints (``streams`` 1 when
    absent), ``generator_saturated`` bool, and ``req_per_cpu_s`` = rps / (server_cpu_pct / 100) is added
    (NaN when the CPU share is missing or zero). ``repeat`` is optional.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a column the report needs (engine, protocol, workload, users, rps) is missing.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("engine", "protocol", "workload", "users", "rps") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {', '.join(missing)}; is it a loadtest sweep summary?")
    for col in _NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce").astype(float)
        elif col != "repeat":
            df[col] = 1.0 if col == "streams" else float("nan")
    df["users"] = df["users"].fillna(0).astype(int)
    df["streams"] = df["streams"].fillna(1).astype(int)
    if "generator_saturated" not in df.columns:
        df["generator_saturated"] = ""
    df["generator_saturated"] = df["generator_saturated"].map(_flag).astype(bool)
    for col in ("run_id", "git_rev", "python", "cpu"):
        if col not in df.columns:
            df[col] = ""
    cpu = df["server_cpu_pct"].where(df["server_cpu_pct"] > 0)
    df["req_per_cpu_s"] = df["rps"] / (cpu / 100.0)
    return df.reset_index(drop=True)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Fold repeated runs: one row per ``GROUP`` with ``<m>`` (median), ``<m>_min``, ``<m>_max`` for each of
    ``METRICS``, ``runs``, ``saturated_runs`` and ``saturated`` (True when any repeat was saturated),
    sorted in the lab's engine / protocol / workload order, then users."""
    if df.empty:
        cols = GROUP + [f"{m}{s}" for m in METRICS for s in ("", "_min", "_max")]
        return pd.DataFrame(columns=cols + ["runs", "saturated_runs", "saturated"])
    g = df.groupby(GROUP, sort=False)
    med = g[METRICS].median()
    lo = g[METRICS].min().add_suffix("_min")
    hi = g[METRICS].max().add_suffix("_max")
    out = pd.concat([med, lo, hi], axis=1)
    out["runs"] = g.size()
    out["saturated_runs"] = g["generator_saturated"].sum().astype(int)
    out["saturated"] = out["saturated_runs"] > 0
    return ordered(out.reset_index())


def _rank(values, order):
    known = {v: i for i, v in enumerate(order)}
    return [known.get(v, len(order)) for v in values]


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by the lab's engine, protocol and workload order (unknown names last), then users."""
    keys = [c for c in ("engine", "protocol", "workload") if c in df.columns]
    if df.empty or not keys:
        return df
    tmp = df.copy()
    for c, order in (("engine", ENGINE_ORDER), ("protocol", PROTOCOL_ORDER), ("workload", WORKLOAD_ORDER)):
        if c in tmp.columns:
            tmp[f"_{c}"] = _rank(tmp[c], order)
    by = [f"_{c}" for c in keys] + keys + [c for c in ("users", "streams") if c in tmp.columns]
    return tmp.sort_values(by, kind="stable").drop(columns=[f"_{c}" for c in keys]).reset_index(drop=True)


def engines_in(df: pd.DataFrame) -> list[str]:
    """The engines present in ``df``, lab engines first, peers after, unknown names last."""
    names = list(dict.fromkeys(df["engine"]))
    return sorted(names, key=lambda e: (_rank([e], ENGINE_ORDER)[0], e))


def run_meta(runs_dir: str | None, run_id: str) -> dict:
    """``<runs_dir>/<run_id>/meta.json`` as a dict ({} when absent or unreadable)."""
    if not runs_dir or not run_id:
        return {}
    try:
        with open(os.path.join(runs_dir, run_id, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def machine(df: pd.DataFrame, runs_dir: str | None = None) -> dict:
    """Where the rows came from: ``cpu``, ``python``, ``git_rev`` (lists of distinct values), ``cores``,
    ``kernel`` and ``commands`` (the sweep command lines) from the runs' meta.json when present,
    ``first``/``last`` (start times, from the run ids) and ``runs`` (rows)."""
    def distinct(col: str) -> list[str]:
        return [v for v in dict.fromkeys(df[col].astype(str)) if v] if col in df.columns else []

    info = {"cpu": distinct("cpu"), "python": distinct("python"), "git_rev": distinct("git_rev"),
            "runs": len(df), "cores": None, "kernel": None, "first": None, "last": None}
    times = []
    commands: list[str] = []
    for run_id in df.get("run_id", pd.Series(dtype=str)):
        full = run_meta(runs_dir, run_id)
        command = " ".join(map(str, full.get("sweep_command") or []))
        if command and command not in commands:
            commands.append(command)
        meta = full.get("machine") or {}
        info["cores"] = info["cores"] or meta.get("cores")
        info["kernel"] = info["kernel"] or meta.get("kernel")
        try:  # run ids start with the run's local start time, YYYYmmdd-HHMMSS (loadtest/experiments/sweep.py)
            times.append(time.strftime("%Y-%m-%d %H:%M", time.strptime(str(run_id)[:15], "%Y%m%d-%H%M%S")))
        except ValueError:
            pass
    if times:
        info["first"], info["last"] = min(times), max(times)
    info["commands"] = commands
    return info


def io_wait_s() -> float:
    """The io workload's handler wait in seconds, from the URL the generators request (``/io?ms=100``)."""
    from loadtest.users.workloads import primary_path

    query = urllib.parse.urlsplit(primary_path("io")).query
    return float(urllib.parse.parse_qs(query).get("ms", ["100"])[0]) / 1000.0


def workers_for(engine: str, df: pd.DataFrame, runs_dir: str | None = None) -> tuple[int | None, str]:
    """The worker count W that bounds ``engine``'s concurrency, and where it came from.

    Read from the runs' meta.json (``engine_options.workers``, else the engine's default: 32 threads for
    threadpool, the run machine's core count for processpool); ``(None, reason)`` for engines without a
    worker bound (selectors, asyncio, the peers) or when nothing says how many.
    """
    if engine not in ("threadpool", "processpool"):
        return None, "no worker bound"
    rows = df[df["engine"] == engine]
    for run_id in rows.get("run_id", pd.Series(dtype=str)):
        meta = run_meta(runs_dir, run_id)
        if not meta:
            continue
        w = (meta.get("engine_options") or {}).get("workers")
        if w:
            return int(w), "--workers from the runs' meta.json"
        if engine in DEFAULT_WORKERS:
            return DEFAULT_WORKERS[engine], "the engine's default; meta.json gives no --workers"
        cores = (meta.get("machine") or {}).get("cores")
        if cores:
            return int(cores), "the default, one process per core of the run's machine"
    if engine in DEFAULT_WORKERS:
        return DEFAULT_WORKERS[engine], "the engine's default, assumed: no meta.json"
    return None, "not recorded: no meta.json"


def littles_law(agg: pd.DataFrame, df: pd.DataFrame, runs_dir: str | None = None) -> pd.DataFrame:
    """The io workload's measured throughput against Little's law.

    For a closed loop of N = users x streams requests in flight and a handler that waits ``io_wait_s()``,
    an engine that holds a worker per waiting request serves at most min(N, W) requests at a time, so
    X = min(N, W) / wait; an engine without a worker bound, N / wait. Columns: engine, protocol, users,
    streams, in_flight (N), workers (W or None), predicted_rps, rps (median), ratio (measured / predicted),
    saturated. Empty when no io rows. A pool engine whose W is not recorded gets no prediction (NaN).
    """
    io = agg[agg["workload"] == "io"]
    wait = io_wait_s()
    rows = []
    cache: dict[str, int | None] = {}
    for r in io.itertuples(index=False):
        if r.engine not in cache:
            cache[r.engine] = workers_for(r.engine, df, runs_dir)[0]
        w = cache[r.engine]
        n = int(r.users) * int(r.streams)
        if r.engine == "processpool" and r.protocol != "h1":
            n = int(r.users)  # one connection's streams are served in order by the process that owns it
        if w is None and r.engine in ("threadpool", "processpool"):
            pred = float("nan")
        else:
            pred = (min(n, w) if w else n) / wait
        rows.append({"engine": r.engine, "protocol": r.protocol, "users": int(r.users), "streams": int(r.streams),
                     "in_flight": n, "workers": w, "predicted_rps": pred, "rps": r.rps,
                     "ratio": r.rps / pred if pred and pred == pred else float("nan"), "saturated": bool(r.saturated)})
    cols = ["engine", "protocol", "users", "streams", "in_flight", "workers", "predicted_rps", "rps", "ratio",
            "saturated"]
    return ordered(pd.DataFrame(rows, columns=cols))


# -- which configuration stands for an engine in a chart -------------------------------------------------

def peak(agg: pd.DataFrame) -> pd.DataFrame:
    """Per (engine, protocol, workload), the configuration with the highest median throughput (its
    ``users`` say where the peak was): the engine's capacity for that workload."""
    if agg.empty:
        return agg
    idx = agg.groupby(["engine", "protocol", "workload"], sort=False)["rps"].idxmax().dropna()
    return ordered(agg.loc[idx.astype(int)])


def highest_users(agg: pd.DataFrame) -> pd.DataFrame:
    """Per (engine, protocol, workload), the configuration with the most users (the heaviest load)."""
    if agg.empty:
        return agg
    idx = agg.groupby(["engine", "protocol", "workload"], sort=False)["users"].idxmax()
    return ordered(agg.loc[idx])


def common_users(agg: pd.DataFrame) -> pd.DataFrame:
    """Per (protocol, workload), every engine at one user count: the highest count that all the engines
    measured in that protocol and workload have (so their latencies compare like with like); when they
    share none, each engine's highest. Adds nothing; rows are ``agg``'s."""
    parts = []
    for (_, _), sub in agg.groupby(["protocol", "workload"], sort=False):
        shared = set.intersection(*(set(s["users"]) for _, s in sub.groupby("engine")))
        if shared:
            parts.append(sub[sub["users"] == max(shared)])
        else:
            parts.append(highest_users(sub))
    return ordered(pd.concat(parts)) if parts else agg
