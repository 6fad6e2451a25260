"""The experiments' repeated rows, summarised: cells folded into medians with intervals, the A/A
control, "what to deploy" as a winner set that knows a tie, the verdict of the odd rounds against
the even ones, and the run's provenance computed from its rows.

Rows of ``python -m loadtest experiment NAME --repeats R`` carry ``round`` (1..R); a *cell* is one
configuration at one load point (:data:`CELL`). Every interval and verdict here comes from
loadtest/report/stats.py (order-statistic interval of the median; paired ratio per round; a tie
unless the ratio's interval clears :data:`stats.THRESHOLD`).
"""

from __future__ import annotations

import pandas as pd

from loadtest.experiments.base import CONTROL, original
from loadtest.report import stats

__all__ = ["CELL", "has_rounds", "split_control", "collapse", "cell_values", "control_table", "control_failed",
           "deploy_rankings", "knees", "target_ratios", "winners_table", "halves_table", "provenance", "fmt_interval"]

#: the columns that name a cell: one configuration at one load point, under one Python
CELL = ["experiment", "engine", "protocol", "workload", "users", "level", "server_cpus", "python"]
_NUMERIC = ["rps", "p50_ms", "p99_ms", "max_ms", "server_cpu_us_per_req", "requests", "steal_pct", "foreign_cores"]


def has_rounds(df: pd.DataFrame) -> bool:
    """Whether ``df``'s rows carry rounds (a run of this harness since repeats)."""
    return "round" in df.columns and df["round"].notna().any()


def split_control(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without the A/A twin, the twin's rows)."""
    twin = df["engine"].astype(str).str.endswith(CONTROL)
    return df[~twin].reset_index(drop=True), df[twin].reset_index(drop=True)


def fmt_interval(ci: stats.Interval | None, spec: str = ",.0f", unit: str = "") -> str:
    """``1,234 [1,200, 1,260] req/s`` (median [low, high]); ``–`` for None."""
    if ci is None:
        return "–"
    if ci.n < 2:
        return f"{ci.median:{spec}}{unit} (n = 1)"
    return f"{ci.median:{spec}}{unit} [{ci.low:{spec}}, {ci.high:{spec}}]"


def collapse(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: the median of each numeric column over the rounds, ``rps_low`` and
    ``rps_high``, ``p99_ms_low`` and ``p99_ms_high`` (their intervals), ``n`` (rounds with a
    requests/s figure), ``rounds`` (rounds run, failed ones included), ``held`` as ``yes`` (every judged
    round held), ``NO`` (none did) or ``inconclusive`` (some did); the other columns from the first
    round. Rows without rounds are returned as they are, with n = 1."""
    if not has_rounds(df) or df.empty:
        out = df.copy()
        out["n"] = 1
        return out
    keys = [c for c in CELL if c in df.columns]
    rows = []
    for _, group in df.groupby(keys, sort=False, dropna=False):
        first = group.sort_values("round").iloc[0].to_dict()
        for col in _NUMERIC:
            if col in group:
                values = pd.to_numeric(group[col], errors="coerce").dropna()
                first[col] = values.median() if len(values) else None
        for col in ("rps", "p99_ms"):
            values = pd.to_numeric(group[col], errors="coerce").dropna() if col in group else pd.Series(dtype=float)
            ci = stats.median_ci(values) if len(values) else None
            first[f"{col}_low"], first[f"{col}_high"] = (ci.low, ci.high) if ci else (None, None)
        first["n"] = int(pd.to_numeric(group["rps"], errors="coerce").notna().sum())
        first["rounds"] = len(group)
        judged = [h for h in group["held"].astype(str) if h in ("yes", "NO")]
        if judged:
            first["held"] = ("yes" if all(h == "yes" for h in judged) else "NO" if all(h == "NO" for h in judged)
                             else "inconclusive")
        rows.append(first)
    return pd.DataFrame(rows)


def knees(df: pd.DataFrame, factor: float = 10.0) -> dict[tuple[str, str], str]:
    """The latency experiment's knee per (engine, workload), from the rounds: the first offered
    load (a % of the ceiling, increasing) whose p99 interval lies wholly above ``factor`` x the
    unloaded p99 (the median p99 at the lowest load); ``"no knee up to X %"`` where none does;
    generator-bound runs (their note says so) are left out, and a load where most were is named.
    ``{(engine, workload): "knee at 80 % (p99 31.2 [28.0, 35.1] ms, n = 5)"}``."""
    runs = df[df["protocol"] == "h2c open loop"].copy()
    out: dict[tuple[str, str], str] = {}
    if runs.empty or "level" not in runs:
        return out
    runs["pct"] = pd.to_numeric(runs["level"].astype(str).str.rstrip(" %"), errors="coerce")
    runs = runs.dropna(subset=["pct"])
    for (engine, workload), group in runs.groupby(["engine", "workload"], sort=False):
        levels = sorted(group["pct"].unique())
        base = pd.to_numeric(group[group["pct"] == levels[0]]["p99_ms"], errors="coerce").dropna()
        if base.empty:
            continue
        limit = factor * float(base.median())
        text = f"no knee up to {levels[-1]:.0f} %"
        for pct in levels[1:]:
            at = group[group["pct"] == pct]
            bound = at["note"].astype(str).str.contains("generator-bound")
            if bound.sum() * 2 > len(at):
                text = f"no knee up to {pct:.0f} %; generator-bound from there (not the server's figure)"
                break
            p99 = pd.to_numeric(at[~bound]["p99_ms"], errors="coerce").dropna()
            if p99.empty:
                continue
            ci = stats.median_ci(p99)
            if ci.low > limit:
                text = f"knee at {pct:.0f} % (p99 {fmt_interval(ci, ',.1f')} ms > {limit:,.1f} ms, n = {ci.n})"
                break
        out[(engine, workload)] = text
    return out


def target_ratios(raw: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The cost experiment's target rows (``A / B``) of ``cells`` with their figure recomputed as a
    paired ratio: each round's row names both servers' requests/s of that round (its note, "this
    round: A x / B y req/s"); the ratio per round, then the median and interval of those ratios."""
    import re

    out = cells.copy()
    pattern = re.compile(r"this round: \S+ ([0-9.]+) / \S+ ([0-9.]+) req/s")
    for i, r in out.iterrows():
        if " / " not in str(r["engine"]):
            continue
        rows = raw[(raw["engine"] == r["engine"]) & (raw["protocol"] == r["protocol"])]
        ratios = [float(m.group(1)) / float(m.group(2)) for m in (pattern.search(str(n)) for n in rows["note"])
                  if m and float(m.group(2)) > 0]
        if ratios:
            ci = stats.median_ci(ratios)
            out.loc[i, ["rps", "rps_low", "rps_high", "n"]] = [ci.median, ci.low, ci.high, ci.n]
    return out


def cell_values(df: pd.DataFrame, metric: str = "rps") -> dict[tuple, dict[int, float]]:
    """``{(engine, protocol, workload, users, server_cpus): {round: value}}`` of one experiment's rows."""
    out: dict[tuple, dict[int, float]] = {}
    for _, r in df.iterrows():
        v = pd.to_numeric(r.get(metric), errors="coerce")
        if pd.isna(v) or pd.isna(r.get("round")):
            continue
        out.setdefault((r["engine"], r["protocol"], r["workload"], r["users"], r.get("server_cpus")),
                       {})[int(r["round"])] = float(v)
    return out


def control_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The A/A control of every experiment: the twin over its original, paired by round, for every
    load point both have (requests/s; p99 where the experiment is judged by latency), its median and
    interval, and the verdict (a tie is what a sound harness gives)."""
    rows = []
    for name, df in frames.items():
        if not has_rounds(df):
            continue
        metric = "p99_ms" if name in ("interference", "deploy") else "rps"
        values = cell_values(df, metric)
        for (engine, protocol, workload, users, cpus), twin in values.items():
            if not str(engine).endswith(CONTROL):
                continue
            base = values.get((original(engine), protocol, workload, users, cpus))
            if not base:
                continue
            c = stats.compare(twin, base)
            rows.append({"experiment": name, "configuration": original(engine), "protocol": protocol,
                         "workload": workload, "users": users, "cores": cpus, "measure": metric,
                         "A/A ratio": fmt_interval(c.ratio, ".3f"), "rounds": c.ratio.n if c.ratio else 0,
                         "verdict": "tie" if c.verdict == "tie" else "NOT A TIE" if c.verdict in ("A", "B")
                         else "unknown"})
    return pd.DataFrame(rows)


def control_failed(table: pd.DataFrame) -> list[str]:
    """The A/A rows that are not a tie: each a failed run of the harness."""
    if table.empty:
        return []
    bad = table[table["verdict"] == "NOT A TIE"]
    return [f"{r['experiment']} {r['configuration']} {r['protocol']} {r['workload']} at {r['users']}: "
            f"{r['measure']} ratio {r['A/A ratio']}" for _, r in bad.iterrows()]


def deploy_rankings(frames: dict[str, pd.DataFrame], rounds: list[int] | None = None) -> dict[str, stats.Ranking]:
    """"What to deploy" as rankings over the rounds (only ``rounds`` where given): CPU-heavy (cores
    rows on every core: most /cpu req/s), wait-heavy (wait rows at the largest N: most req/s),
    database-bound (db rows, /queries?queries=20: most req/s), mixed (deploy rows: lowest p99, among
    the runs that achieved >= 95 % of the offered rate)."""
    out: dict[str, stats.Ranking] = {}

    def values(df: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
        got: dict[str, dict[int, float]] = {}
        for _, r in df.iterrows():
            v = pd.to_numeric(r[metric], errors="coerce")
            if pd.isna(v) or str(r["engine"]).endswith(CONTROL) or (rounds and int(r["round"]) not in rounds):
                continue
            got.setdefault(str(r["engine"]), {})[int(r["round"])] = float(v)
        return got

    cores, wait, mixed = frames.get("cores"), frames.get("wait"), frames.get("deploy")
    if cores is not None and has_rounds(cores):
        every_core = pd.to_numeric(cores["server_cpus"], errors="coerce") > 1
        v = values(cores[every_core & (cores["workload"].astype(str) == "cpu")], "rps")  # not /cpu?shared=1
        if v:
            out["CPU-heavy (/cpu, wrk, every core): req/s"] = stats.rank(v)
    if wait is not None and has_rounds(wait):
        users = pd.to_numeric(wait["users"], errors="coerce")
        v = values(wait[users == users.max()], "rps")
        if v:
            out[f"wait-heavy (/io?ms=100, {int(users.max()):,} in flight): req/s"] = stats.rank(v)
    db = frames.get("db")
    if db is not None and has_rounds(db):
        v = values(db[db["workload"].astype(str) == "queries=20"], "rps")
        if v:
            out["database-bound (/queries?queries=20 on PostgreSQL, wrk -c64): req/s"] = stats.rank(v)
    if mixed is not None and has_rounds(mixed):
        v = values(mixed[mixed["held"].astype(str) == "yes"], "p99_ms")
        if v:
            out["mixed (90 % /plaintext, 10 % /cpu, open loop): p99 ms"] = stats.rank(v, higher_is_better=False)
    return out


def winners_table(rankings: dict[str, stats.Ranking]) -> pd.DataFrame:
    """One row per workload: the winner set (best first: every configuration the paired ratio
    cannot tell from the best), the best's median and interval, rounds each won, and the first
    configuration the data does separate, with its paired ratio."""
    rows = []
    for workload, rk in rankings.items():
        spec = ",.1f" if "ms" in workload.rsplit(":", 1)[-1] else ",.0f"
        beaten = [n for n, c in rk.versus.items() if n not in rk.winners]
        first_beaten = beaten[0] if beaten else None
        total = sum(rk.rounds_won.values())
        rows.append({
            "workload": workload,
            "deploy": (rk.best if rk.clear else "tie: " + ", ".join(rk.winners)),
            "best (median [95 % interval])": fmt_interval(rk.medians[rk.best], spec),
            "rounds won": ", ".join(f"{n} {rk.rounds_won[n]}/{total}" for n in rk.winners if rk.rounds_won.get(n)),
            "next, separated": (f"{first_beaten}: {fmt_interval(rk.medians[first_beaten], spec)}, best / it "
                                f"{fmt_interval(rk.versus[first_beaten].ratio, '.2f')}x" if first_beaten else "–"),
        })
    return pd.DataFrame(rows)


def halves_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """"What to deploy" computed from the odd rounds and from the even rounds, side by side: a
    verdict that reproduces names the same winner set (or the same best within a tie) in both."""
    all_rounds = sorted({int(r) for df in frames.values() if has_rounds(df) for r in df["round"].dropna()})
    odd, even = stats.halves(all_rounds)
    if not odd or not even:
        return pd.DataFrame()
    a, b = deploy_rankings(frames, odd), deploy_rankings(frames, even)
    rows = []
    for workload in a:
        if workload not in b:
            continue
        wa, wb = set(a[workload].winners), set(b[workload].winners)
        agree = ("same" if wa == wb else "overlap" if wa & wb else "DIFFERENT")
        rows.append({"workload": workload, "odd rounds": ", ".join(a[workload].winners),
                     "even rounds": ", ".join(b[workload].winners), "halves": agree})
    return pd.DataFrame(rows)


def provenance(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The run's header, computed from its rows: Pythons and GIL, revisions, rows, rounds, seeds,
    noisy windows."""
    if not frames:
        return []
    every = pd.concat(frames.values(), ignore_index=True)
    lines = []
    for py, group in every.groupby("python", sort=False):
        gil = ", ".join(sorted({str(g) for g in group.get("gil", pd.Series(dtype=str)).dropna()}))
        lines.append(f"{py} (GIL: {gil or '?'}): {len(group):,} rows")
    revs = sorted({str(r) for r in every["git_rev"].dropna()})
    lines.append(f"git {', '.join(revs)}" + (" (uncommitted changes: -dirty)" if any(r.endswith("-dirty") for r in revs)
                                            else ""))
    if has_rounds(every):
        per = every.groupby(["experiment", "python"])["round"].max()
        lines.append(f"rounds per experiment: {int(per.min())}" + (f" to {int(per.max())}" if per.max() != per.min()
                                                                   else "") + "; seeds " +
                     ", ".join(sorted({str(int(s)) for s in every["seed"].dropna()})))
        noisy = every.get("noisy", pd.Series(dtype=str)).astype(str)
        reruns = every.get("note", pd.Series(dtype=str)).astype(str).str.contains("measured again").sum()
        lines.append(f"noisy windows (steal > 5 % or foreign CPU > 0.1 core): {int((noisy == 'yes').sum())} kept "
                     f"after reruns, {int(reruns)} rows measured again")
    else:
        lines.append("one run per row (no rounds): no interval can be given")
    return lines


def db_rankings(frames: dict[str, pd.DataFrame]) -> dict[str, stats.Ranking]:
    """"What does a real database change?": per database route of the ``db`` rows (not the pool
    axis), the deployments ranked by req/s over the rounds (winner sets, ties named)."""
    db = frames.get("db")
    out: dict[str, stats.Ranking] = {}
    if db is None or not has_rounds(db):
        return out
    for workload in dict.fromkeys(db["workload"].astype(str)):
        if workload == "db-wait":
            continue
        got: dict[str, dict[int, float]] = {}
        for _, r in db[db["workload"].astype(str) == workload].iterrows():
            v = pd.to_numeric(r["rps"], errors="coerce")
            if pd.isna(v) or str(r["engine"]).endswith(CONTROL):
                continue
            got.setdefault(str(r["engine"]), {})[int(r["round"])] = float(v)
        if got:
            out[f"/{workload.replace('=', '?queries=', 1) if '=' in workload else workload}: req/s"] = stats.rank(got)
    return out
