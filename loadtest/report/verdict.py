"""The report's lead: the verdict table and a section per experiment, from results/experiments/.

``python -m loadtest report`` calls :func:`experiment_sections` when results/experiments/ holds the
CSVs of ``python -m loadtest experiment``: the first section is the verdict (a row per question,
a column per engine with the measured figure, whether the law held, one line of why), then one
section per experiment in the order of ``experiment all``, each with its chart, the command that
made it, findings computed from the numbers, and its table. Every figure comes from those CSVs
(and, for the latency spectrum, the HdrHistogram files in results/experiments/latency/).
"""

from __future__ import annotations
import os
import re

import pandas as pd

from loadtest.experiments.base import ENGINES
from loadtest.report import rounds as RD
from loadtest.harness.servers import ROOT
from loadtest.report.document import Section, md_table
from loadtest.report.expcharts import charts
from loadtest.report.frames import (COMMANDS, ORDER, QUESTIONS, _columns, _engines, _f, _held, _is_hybrid, _model,
                                    _kib, _rate, latency_json, load, load_rounds, manifest)
from loadtest.report.freethreading import freethreading_sections
from loadtest.report.pythons import (PYTHON_COMMAND, interpreter_workers, python_change, python_findings,
                                     python_sections, pythons)

__all__ = ["load", "load_rounds", "verdict", "deploy_table", "python_change", "interpreter_workers", "python_findings",
           "pythons", "charts", "findings", "experiment_sections", "rigor_section", "ORDER", "QUESTIONS",
           "headline", "readme_block", "latency_json"]

#: why an engine can be the costliest per request on one core (the cost row's "why")
_COSTLIEST = {"threadpool": "each request handed from the poller to a pool thread and back",
              "processpool": "blocking workers in processes sharing the one core; see cores for where it pays off",
              "selectors": "the loop's own bookkeeping per ready socket",
              "asyncio": "asyncio's callbacks and transports around each read"}

# -- per experiment: (cells by engine, law held, why, findings) -----------------------------------------

def _cost(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    h1 = df[(df["protocol"] == "h1") & (df["workload"] == "plaintext")]
    cells = {}
    for e in _engines(df):
        r = h1[h1["engine"] == e]
        if not r.empty:
            r = r.iloc[0]
            cells[e] = f"{_rate(r)}, {_f(r['server_cpu_us_per_req'], '.0f')} µs CPU/req (h1 /plaintext)"
    ratios = df[df["engine"].str.contains(" / ", regex=False)]
    law = _held(ratios)
    def ratio_of(r) -> float:  # rows of the harness before rounds kept the ratio's 3 decimals in the note
        m = re.search(r"ratio ([0-9.]+)", str(r["note"]))
        return float(m.group(1)) if m and int(r.get("n", 1) or 1) == 1 else r["rps"]

    parts = [f"{r['engine']} {_f(ratio_of(r), '.2f')}x" + (f" [{_f(r['rps_low'], '.2f')}, {_f(r['rps_high'], '.2f')}]"
                                                       if "rps_low" in r and pd.notna(r.get("rps_low")) else "")
             + f" ({r['protocol']}, target {r['expected']}: {r['held'] if r['held'] != 'yes' else 'held'})"
             for _, r in ratios.iterrows() if pd.notna(pd.to_numeric(r["rps"], errors="coerce"))]
    mine = h1[h1["engine"].isin(ENGINES)].dropna(subset=["server_cpu_us_per_req"])
    why = ""
    if not mine.empty:
        lo, hi = mine.loc[mine["server_cpu_us_per_req"].idxmin()], mine.loc[mine["server_cpu_us_per_req"].idxmax()]
        why = (f"on one core the cost per request decides: {lo['engine']} {_f(lo['server_cpu_us_per_req'])} µs, "
               f"{hi['engine']} {_f(hi['server_cpu_us_per_req'])} µs ({_COSTLIEST[hi['engine']]})")
    findings = [why] if why else []
    if parts:
        findings.append("Targets, measured in the same run: " + "; ".join(parts) + ".")
    peers = h1[~h1["engine"].isin(ENGINES) & ~h1["engine"].str.contains(" / ", regex=False)]
    if not peers.empty:
        findings.append("Peers on h1 /plaintext: " + ", ".join(
            f"{r['engine']} {_f(r['rps'])} req/s ({_f(r['server_cpu_us_per_req'])} µs)" for _, r in peers.iterrows())
            + ".")
    return cells, law, why, findings


def _wait(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    cells, findings = {}, []
    for e in _engines(df):
        sub = df[df["engine"] == e].sort_values("users")
        top = sub.iloc[-1]
        judged = {"yes": "held", "NO": "NOT held"}.get(str(top["held"]), "not judged")
        cells[e] = f"{_rate(top)} at N = {int(top['users']):,} (law {top['expected']}: {judged})"
        findings.append(f"{e}: " + ", ".join(f"N={int(r['users'])} {_f(r['rps'])}" for _, r in sub.iterrows())
                        + f" req/s; {_held(sub)} within 10 % of X = min(N, L) / 0.1 s.")
    why = ("a waiting request costs the loops a coroutine frame, so X keeps growing with N; it holds a thread in "
           "threadpool (L = 32) and a whole process in processpool (L = its processes)")
    return cells, _held(df), why, findings


def _cores(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    cells, findings = {}, []
    for e in _engines(df):
        sub = df[df["engine"] == e]
        one = sub[sub["server_cpus"] == 1]
        many = sub[sub["server_cpus"] > 1]
        if _is_hybrid(e) and not many.empty:
            r = many.iloc[0]
            model = _model(e)[0]
            one_name = f"{model} x1 (interpreters)" if "(interpreters)" in str(e) else model
            base = df[(df["engine"] == one_name) & (df["server_cpus"] == 1)]
            ratio = (f"{float(r['rps']) / float(base.iloc[0]['rps']):.2f}x" if not base.empty
                     and pd.notna(r["rps"]) and float(base.iloc[0]["rps"] or 0) else "?")
            cells[e] = f"{ratio} one process ({_rate(r)} on {int(r['server_cpus'])} cores)"
            findings.append(f"{e}: {_rate(r)} on {int(r['server_cpus'])} cores, {ratio} its one-process rate on one "
                            f"core; law {r['expected']}: {'held' if r['held'] == 'yes' else r['held'] or 'not judged'}.")
            continue
        if one.empty or many.empty:
            continue
        ratio = float(many.iloc[0]["rps"]) / max(1e-9, float(one.iloc[0]["rps"]))
        cells[e] = f"{ratio:.2f}x its one-core rate ({_rate(many.iloc[0])} on {int(many.iloc[0]['server_cpus'])} cores)"
        findings.append(f"{e}: {_f(one.iloc[0]['rps'])} req/s on one core, {_f(many.iloc[0]['rps'])} on "
                        f"{int(many.iloc[0]['server_cpus'])} ({ratio:.2f}x); law {many.iloc[0]['expected']}: "
                        f"{'held' if many.iloc[0]['held'] == 'yes' else many.iloc[0]['held'] or 'not judged'}.")
    peers = df[df["engine"].map(lambda n: " x" in str(n) and not _is_hybrid(n))]
    if not peers.empty:
        findings.append("Peers, same run: " + ", ".join(
            f"{r['engine']} {_rate(r)}" for _, r in peers.iterrows()) + ".")
    why = ("the GIL lets one thread run Python at a time: a model runs /cpu on several cores only as several "
           "processes (processpool, or any model x W)")
    return cells, _held(df), why, findings


def _interference(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    cells, findings = {}, []
    cpu_ms = None
    for e in _engines(df):
        sub = df[df["engine"] == e].sort_values("users")
        base, top = sub.iloc[0], sub.iloc[-1]
        cells[e] = f"p99 {_f(top['p99_ms'], '.1f')} ms with k = {int(top['users'])} (k = 0: {_f(base['p99_ms'], '.2f')} ms)"
        findings.append(f"{e}: /plaintext p99 " + ", ".join(f"k={int(r['users'])} {_f(r['p99_ms'], '.2f')} ms"
                                                         for _, r in sub.iterrows()) + ".")
        m = re.search(r"one /cpu takes ([0-9.]+) ms", str(base["note"]))
        cpu_ms = cpu_ms or (m.group(1) if m else None)
    why = (f"a loop runs one handler at a time, so a /cpu ({cpu_ms or '?'} ms) stalls every other connection; "
           "threads share the GIL (a convoy); processes isolate while a worker is free")
    return cells, _held(df), why, findings


def _latency(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    knees = df[df["protocol"] == "h2c open loop knee"]
    runs = df[df["protocol"] == "h2c open loop"]
    cells, findings = {}, []
    by_interval = ({(r["engine"], r["workload"]): r["knee_interval"] for _, r in knees.iterrows() if r["knee_interval"]}
                   if "knee_interval" in knees else {})
    for e in _engines(df):
        if by_interval:
            if (e, "cpu") in by_interval:
                cells[e] = f"/cpu {by_interval[(e, 'cpu')]}"
            findings += [f"{e} /{w}: {text}." for (en, w), text in by_interval.items() if en == e]
            continue
        k = knees[(knees["engine"] == e) & (knees["workload"] == "cpu")]
        if not k.empty:
            cells[e] = f"/cpu knee {_f(k.iloc[0]['rps'])} req/s ({k.iloc[0]['expected'].replace('knee at ', '')})"
        for _, r in knees[knees["engine"] == e].iterrows():
            findings.append(f"{e} /{r['workload']}: {r['expected']}, {_f(r['rps'])} req/s; {r['note']}.")
    notes = runs["note"].astype(str)
    flagged = int(notes.str.contains("generator-bound").sum())
    saturated = int(notes.str.contains("server saturated").sum())
    findings.append(f"{flagged} of {len(runs)} open-loop cells had more than 5 % of their requests sent late "
                    f"(generator-bound: not the server's figure); {saturated} were sent on time and answered below "
                    "the offered rate (the server saturated).")
    why = ("latency is flat until the offered load nears the ceiling, then queueing takes over: the knee is "
           "where p99 passes 10x its unloaded value")
    return cells, f"{flagged} generator-bound", why, findings




def _connections(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    cells, findings = {}, []
    for e in _engines(df):
        sub = df[df["engine"] == e]
        parts = [f"{_f(_kib(r['note']), '.1f')} KiB ({r['protocol'].split()[0]})" for _, r in sub.iterrows()]
        cells[e] = ", ".join(parts)
        for _, r in sub.iterrows():
            findings.append(f"{e} {r['protocol']}: {r['note']}; a new request meanwhile p50 "
                            f"{_f(r['p50_ms'], '.2f')} ms, p99 {_f(r['p99_ms'], '.2f')} ms.")
    why = ("an idle connection is a socket and a parser on every engine (a poller entry, not a thread), so "
           "holding thousands costs memory, not throughput; an open HTTP/2 stream adds its handler's state")
    return cells, _held(df), why, findings


def _multiplex(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    io = df[df["workload"] == "io"]
    cells, findings = {}, []
    for e in _engines(df):
        sub = io[io["engine"] == e]
        h1 = sub[sub["protocol"].str.startswith("h1")]
        h2 = sub[sub["protocol"].str.startswith("h2c")]
        if h1.empty or h2.empty:
            continue
        measured = h2[pd.to_numeric(h2["rps"], errors="coerce").notna()]
        failed = h2[pd.to_numeric(h2["rps"], errors="coerce").isna()]
        if measured.empty:
            cells[e] = f"/io: every h2c shape failed; h1 {_rate(h1.iloc[0])}"
            continue
        best = measured.loc[measured["rps"].idxmax()]
        worst = measured.loc[measured["rps"].idxmin()]
        cells[e] = (f"/io: {_f(best['rps'])} req/s at {best['protocol']} vs h1 {_rate(h1.iloc[0])}; "
                    f"worst {worst['protocol']} {_f(worst['rps'])}"
                    + (f"; failed: {', '.join(failed['protocol'])}" if not failed.empty else ""))
        findings.append(f"{e} /io: " + ", ".join(f"{r['protocol']} {_rate(r)}" for _, r in sub.iterrows()) + ".")
    why = ("multiplexing helps a model only as far as one connection's streams run at once: all of them on the "
           "loops (up to 100, MAX_CONCURRENT_STREAMS), a quarter of the pool on threadpool, one on processpool")
    return cells, _held(io), why, findings


def _deploy(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    cells, findings = {}, []
    for _, r in df.sort_values("p99_ms").iterrows():
        findings.append(f"{r['engine']}: p99 {_f(r['p99_ms'], '.1f')} ms, p50 {_f(r['p50_ms'], '.2f')} ms, max "
                        f"{_f(r['max_ms'], '.0f')} ms; {r['note']}.")
    why = ("the mixed load at one offered rate: the p99 shows how long the cheap requests wait behind /cpu, and "
           "where")
    return cells, _held(df), why, findings


def _db(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    routes = df[df["workload"].astype(str) != "db-wait"]
    cells, findings = {}, []
    for e in _engines(routes):
        sub = routes[routes["engine"] == e]
        parts = [f"{w} {_rate(r)}" for w in ("db", "queries=20", "fortunes")
                 for _, r in sub[sub["workload"] == w].iterrows()]
        cells[e] = "; ".join(parts)
    for _, r in df.iterrows():
        findings.append(f"{r['engine']} {r['workload']}: {_rate(r)}, p99 {_f(r['p99_ms'], '.1f')} ms"
                        + (f"; {r['note']}" if str(r.get('note', '')) not in ('', 'nan') else "") + ".")
    why = ("a query holds a pool thread (threadpool), a whole process (processpool), or only a connection and "
           "a coroutine (the loops): with a real database the connections and the database's own CPU set the "
           "ceiling, not the model alone")
    return cells, _held(df), why, findings


SUMMARIZE = {"cost": _cost, "wait": _wait, "cores": _cores, "interference": _interference, "deploy": _deploy,
             "latency": _latency, "connections": _connections, "multiplex": _multiplex, "db": _db}


def _pool_axis_table(raw: pd.DataFrame | None, cells: pd.DataFrame | None) -> pd.DataFrame:
    """The db experiment's pool axis (workload ``db-wait``): per deployment, the median [interval]
    req/s over the rounds, its law, whether it held, and the row's note."""
    if raw is None or cells is None:
        return pd.DataFrame()
    rows = []
    for _, r in cells[cells["workload"].astype(str) == "db-wait"].iterrows():
        values = pd.to_numeric(raw[(raw["engine"] == r["engine"]) & (raw["workload"] == "db-wait")]["rps"],
                               errors="coerce").dropna()
        rows.append({"deployment (pool per copy)": r["engine"],
                     "req/s (median [95 % interval])": (RD.fmt_interval(RD.stats.median_ci(list(values)), ",.0f")
                                                        if len(values) else "failed"),
                     "Little's law": r["expected"] if str(r["expected"]) not in ("", "nan") else "– (does not fit)",
                     "held": r["held"] if str(r["held"]) not in ("", "nan") else "not judged",
                     "note": r["note"] if str(r["note"]) not in ("", "nan") else ""})
    return pd.DataFrame(rows)


def db_section(directory: str) -> list[Section]:
    """"What does a real database change?" (Cal Paterson's question, "Async Python is not faster",
    2020): per route, the deployments the rounds cannot tell apart from the best, on one PostgreSQL."""
    raw = load_rounds(directory)
    table = RD.winners_table(RD.db_rankings(raw))
    if table.empty:
        return []
    out = []
    axis = _pool_axis_table(raw.get("db"), load(directory).get("db"))
    if not axis.empty:
        out.append(Section(
            "db-pool", "Sizing the pool: copies x connections against max_connections",
            "`/db/wait?ms=20` (a `pg_sleep` that holds a connection) at 64 in flight, per deployment and "
            "pool size per copy, against a PostgreSQL with max_connections 20 (3 kept for superusers): "
            "while copies x pool fits, Little's law X = min(N, W x P) / 0.02 s holds (within 25 %). Past "
            "it, what a user sees depends on the driver: the selectors loop's own connections fail the "
            "requests that find none at once (503, counted in the note); psycopg-pool (threadpool, asyncio) "
            "keeps retrying the connections it could not open and the requests wait for those it has (fewer "
            "req/s, no error). Size the pool so that copies x pool stays under max_connections; then the "
            "database's own ceiling, not the server's, bounds the rest.", [], axis, []))
    return [Section(
        "db-answer", "What does a real database change?",
        "The same handlers, the same driver (psycopg 3; the peers as their users run them: asyncpg for uvicorn "
        "and granian, psycopg-pool for gunicorn) and one PostgreSQL, in the same rounds: only the model, the "
        "copies and the pool differ. Per route, the winner set by paired ratios over the rounds (a single name "
        "only where it clears 3 % over its whole 95 % interval, else a tie), as \"Async Python is not faster\" "
        "(Cal Paterson, 2020) asked. The pool axis is the next table; the database's own CPU per request is in "
        "each row's note (db.csv; docs/database.md).", [], table, [])] + out


def findings(name: str, df: pd.DataFrame) -> list[str]:
    """The sentences computed from experiment ``name``'s rows."""
    return SUMMARIZE[name](df)[3]


def verdict(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per question: the measured figure per engine and per hybrid (model x W), whether
    the law held, why."""
    rows = []
    columns = _columns({n for df in frames.values() for n in df["engine"]})
    for name in ORDER:
        if name not in frames or name == "deploy":
            continue
        cells, law, why, _ = SUMMARIZE[name](frames[name])
        rows.append({"question": f"{name}: {QUESTIONS[name]}", **{e: cells.get(e, "–") for e in columns},
                     "law held": law, "why": why})
    return pd.DataFrame(rows)


# -- what to deploy -------------------------------------------------------------------------------------

def _why_cpu(best: pd.Series) -> str:
    model, _ = _model(best["engine"])
    w = int(best["workers"])
    if w > 1:
        return (f"{w} processes share no GIL, so /cpu runs on {min(w, int(best['server_cpus']))} cores at once; "
                "within one process threads take turns")
    return f"one process runs Python on one core at a time ({model})"


def _why_wait(best: pd.Series) -> str:
    model, _ = _model(best["engine"])
    if model in ("selectors", "asyncio", "uvicorn-httptools", "granian", "hypercorn"):
        return "a waiting request costs a loop a coroutine frame, not a thread or a process: X grows with N"
    if model in ("threadpool", "gunicorn-gthread"):
        return "each wait holds a thread: X = threads / 0.1 s"
    return "each wait holds a whole process"


def _why_mixed(best: pd.Series) -> str:
    w = int(best["workers"])
    if w > 1:
        return (f"a /cpu stalls only the connections of its own process: with {w} processes the cheap "
                "requests mostly find one free")
    return "one process: every /cpu stalls the requests queued behind it"


def deploy_per_build(directory: str) -> list[Section]:
    """"What to deploy" on each Python build after the first (3.14, 3.14t, 3.14t with PYTHON_GIL=1):
    the same winner sets and ties as the first build's table, from that build's rows alone (a
    workload whose experiment did not run under it is left out)."""
    every = load_rounds(directory, every_python=True)
    labels = pythons(every)
    out = []
    for i, label in enumerate(labels[1:], start=1):
        sub = {name: df[df["python"] == label].reset_index(drop=True) for name, df in every.items()
               if "python" in df.columns}
        winners = RD.winners_table(RD.deploy_rankings({k: v for k, v in sub.items() if not v.empty}))
        if winners.empty:
            continue
        out.append(Section(
            f"deploy-what-{i}", f"What to deploy on {label}",
            "The same question on another build, from its own rows of the same run (the workloads whose "
            "experiments ran under it): winner sets by paired ratios over the rounds, ties named.",
            [], winners, []))
    return out


def deploy_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """"What to deploy": for each of three workloads, the best deployment measured here (model x
    workers, peers included), its figure, the runner-up and by how much, why, and the Python it
    ran on. CPU-heavy: ``cores`` rows on every core, most /cpu req/s. Wait-heavy: ``wait`` rows
    at the largest N (1,000 in the reference run), most req/s. Mixed: ``deploy`` rows that
    reached >= 95 % of the offered rate, lowest p99."""
    rows = []

    def add(workload: str, ranked: pd.DataFrame, figure, better: str, why) -> None:
        if ranked.empty:
            return
        best = ranked.iloc[0]
        runner = ranked[ranked["engine"] != best["engine"]]
        row = {"workload": workload, "deploy": f"{_model(best['engine'])[0]} x{int(best['workers'])}",
               "figure": figure(best), "runner-up": "–", "by": "–", "why": why(best)}
        if not runner.empty:
            r = runner.iloc[0]
            row["runner-up"] = f"{_model(r['engine'])[0]} x{int(r['workers'])}: {figure(r)}"
            a, b = float(best["rps"] if better == "rps" else r["p99_ms"]), float(r["rps"] if better == "rps" else best["p99_ms"])
            row["by"] = f"{a / b:.2f}x" if b else "–"
        rows.append(row)

    cores = frames.get("cores")
    if cores is not None and "workers" in cores:
        many = cores[cores["server_cpus"] > 1].sort_values("rps", ascending=False)
        add("CPU-heavy (/cpu, wrk, every core)", many, lambda r: f"{_f(r['rps'])} req/s", "rps", _why_cpu)
    wait = frames.get("wait")
    if wait is not None and "workers" in wait:
        top = wait[wait["users"] == wait["users"].max()].sort_values("rps", ascending=False)
        add(f"wait-heavy (/io?ms=100, {int(wait['users'].max()):,} in flight)", top,
            lambda r: f"{_f(r['rps'])} req/s", "rps", _why_wait)
    mixed = frames.get("deploy")
    if mixed is not None:
        ok = mixed[mixed["held"] == "yes"].sort_values("p99_ms")
        offered = str(mixed.iloc[0]["expected"]).replace("offered ", "")
        add(f"mixed (90 % /plaintext, 10 % /cpu, open loop, {offered})", ok,
            lambda r: f"p99 {_f(r['p99_ms'], '.1f')} ms ({_f(r['rps'])} req/s achieved)", "p99", _why_mixed)
    return pd.DataFrame(rows)


def experiment_sections(directory: str, out_dir: str) -> list[Section]:
    """What to deploy, the verdict, what another Python changes, then one section per experiment."""
    frames = load(directory)
    if not frames:
        return []
    raw = load_rounds(directory)
    revs = sorted({str(r) for df in frames.values() for r in df["git_rev"].unique()})
    rel = os.path.relpath(os.path.abspath(directory), ROOT)
    commands = _manifest_commands(directory)
    sections = [rigor_section(directory)]
    winners = RD.winners_table(RD.deploy_rankings(raw))
    deploy = deploy_table(frames)
    # name only the CSVs that are there (a reference run in pieces may not have them all yet)
    sources = ", ".join(f"{rel}/{name}.csv" for name in ("cores", "wait", "deploy") if name in frames)
    if not winners.empty:
        sections.append(Section(
            "deploy-what", "What to deploy",
            "For each workload, the deployments the data cannot tell apart from the best (model x workers, the "
            "peers included, the same rounds): a single name only where the best's paired ratio to every other "
            f"clears {RD.stats.THRESHOLD:.0%} over its whole 95 % interval, else *tie* and the set. Medians of the "
            "rounds with their intervals; rounds won counts the rounds in which each had the best figure. From "
            f"{sources} (git {', '.join(revs)}).", [], winners, []))
    elif not deploy.empty:
        sections.append(Section(
            "deploy-what", "What to deploy",
            "Which model, and how many processes: for each workload the best deployment measured here "
            f"(model x workers, the peers included, the same run), its figure, the runner-up and by how much, "
            f"and why. Computed from {sources} (git {', '.join(revs)}).", [], deploy, []))
    sections += deploy_per_build(directory)
    sections += db_section(directory)
    ran_on = ", ".join(sorted({str(p) for df in frames.values() if "python" in df for p in df["python"].unique()}))
    sections += [Section(
        "verdict", "The verdict",
        "One row per question, one column per engine and per hybrid (model x W processes): the measured figure, "
        "whether the law held (rows "
        f"within the law / rows judged), and why. From {rel}/*.csv (git " + ", ".join(revs)
        + f"); `python -m loadtest experiment all` made them; every figure ran on {ran_on}.", [], verdict(frames), [])]
    sections += python_sections(directory)
    sections += freethreading_sections(directory)
    for name in ORDER:
        if name not in frames:
            continue
        df = frames[name]
        _, _, why, findings = SUMMARIZE[name](df)
        cols = [c for c in ("engine", "workers", "protocol", "workload", "users", "rps", "p50_ms", "p99_ms", "max_ms",
                            "server_cpus", "server_cpu_us_per_req", "expected", "held", "note") if c in df.columns]
        table = df[cols].astype(object).where(df[cols].notna(), "").astype(str)
        sections.append(Section(
            f"exp-{name}", f"{name}: {QUESTIONS[name]}",
            f"{_command_sentence(commands.get(name), COMMANDS[name])} (rows in {rel}/{name}.csv). {why.capitalize()}.",
            charts(name, df, directory, out_dir), table, findings))
    return sections


def _manifest_commands(directory: str) -> dict[str, list[str]]:
    """The commands each experiment's rows were made by, from the run's manifest.json where there
    is one: every distinct command of its pieces, in the order they ran (a run in pieces has
    several, one Python or build each)."""
    out: dict[str, list[str]] = {}
    for p in manifest(directory):
        if p.get("command"):
            cmds = out.setdefault(p["experiment"], [])
            if p["command"] not in cmds:
                cmds.append(p["command"])
    return out


def _command_sentence(commands: list[str] | None, default: str) -> str:
    """"Command: `...`" for one command (``default`` where the manifest names none); "Commands
    (N pieces, manifest.json): `...`; `...`" for a run in pieces."""
    if not commands:
        return f"Command: `{default}`"
    if len(commands) == 1:
        return f"Command: `{commands[0]}`"
    return f"Commands ({len(commands)} pieces, manifest.json): " + "; ".join(f"`{c}`" for c in commands)


def rigor_section(directory: str) -> Section:
    """How far the figures can be trusted: the run's provenance from its rows, the A/A control of
    every experiment (a failed control is said first), and "what to deploy" from the odd rounds
    against the even ones."""
    raw = load_rounds(directory)
    control = RD.control_table(raw)
    failed = RD.control_failed(control)
    halves = RD.halves_table(raw)
    findings = [f"HARNESS FAULT: the A/A control is not a tie: {f}" for f in failed]
    findings += RD.provenance(raw)
    if not control.empty and not failed:
        findings.append(f"The A/A control (selectors measured twice under two names, in the same rounds) is a tie in "
                        f"all {len(control)} cells where both ran.")
    if not halves.empty:
        differ = halves[halves["halves"] == "DIFFERENT"]
        findings.append("What to deploy from the odd rounds and from the even rounds: "
                        + ("the same or overlapping winner sets for every workload." if differ.empty else
                           "different winners for " + ", ".join(differ["workload"]) + ": that verdict does not "
                           "reproduce; read it as a tie."))
        findings.append("Halves: " + "; ".join(f"{r['workload']}: odd {r['odd rounds']} | even {r['even rounds']}"
                                               for _, r in halves.iterrows()))
    return Section("rigor", "How far these figures can be trusted",
                   "Every cell is measured once per round, each round on freshly started servers in a shuffled "
                   "order (`--repeats`, `--seed`); figures are medians with a 95 % distribution-free interval of "
                   "the median (loadtest/report/stats.py; up to 5 rounds that is the min-max, covering 1 - 2^(1-n) of the "
                   "cases: 75 % at 3 rounds, 93.8 % at 5). The "
                   "table is the A/A control: the same configuration under two names, paired by round.",
                   [], control, findings)


def headline(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The issue's headline figures, measured again: /cpu req/s with the server on every core (8
    connections) and /plaintext p99 while 2 connections run /cpu, per engine."""
    rows = []
    cores, inter = frames.get("cores"), frames.get("interference")
    for e in ENGINES:
        row = {"engine": e}
        if cores is not None:
            many = cores[(cores["engine"] == e) & (cores["server_cpus"] > 1)]
            row["/cpu req/s, 8 connections, server on every core"] = _f(many.iloc[0]["rps"]) if len(many) else "–"
        if inter is not None:
            k2 = inter[(inter["engine"] == e) & (inter["users"] == 2)]
            row["/plaintext p99 while 2 connections run /cpu (p50)"] = (
                f"{_f(k2.iloc[0]['p99_ms'], '.1f')} ms ({_f(k2.iloc[0]['p50_ms'], '.1f')} ms)" if len(k2) else "–")
        rows.append(row)
    return pd.DataFrame(rows)


def readme_block(directory: str, out_dir: str, chart_rel: str) -> str:
    """What ``python -m loadtest report --readme README.md`` writes between the README's
    ``<!-- verdict:start -->`` and ``<!-- verdict:end -->`` markers: the front door only, what to
    deploy, the verdict and one chart (``out_dir``: where the charts are; ``chart_rel``: the same,
    relative to the README), from the committed experiments' CSVs; the build named once above the
    tables, the A/A control's state and the rounds behind the figures beside it. Another Python and
    the worker kinds are REPORT.md's."""
    frames = load(directory)
    raw = load_rounds(directory)
    revs = sorted({str(r) for df in frames.values() for r in df["git_rev"].unique()})
    cpus = sorted({str(r) for df in frames.values() for r in df["cpu"].unique()})
    charts_md = " ".join(f"![{n}]({chart_rel}/{n}.png)" for n in ("exp_cores",)  # one chart; the rest: REPORT.md
                         if os.path.exists(os.path.join(out_dir, f"{n}.png")))
    labels = pythons(load(directory, every_python=True))
    command = PYTHON_COMMAND if len(labels) > 1 else "python -m loadtest experiment all"
    control = RD.control_table(raw)
    failed = RD.control_failed(control)
    trust = ("one run per row: no interval, no tie can be told" if not any(RD.has_rounds(df) for df in raw.values())
             else f"A/A control NOT A TIE in {len(failed)} cells: a fault of the harness, see REPORT.md" if failed
             else f"figures are medians of the rounds [95 % interval]; the A/A control is a tie in all {len(control)} cells")
    return "\n".join([
        f"Measured by `{command}` (git {', '.join(revs)}; {', '.join(cpus)}); the tables below ran on "
        f"**{labels[0] if labels else '?'}**; {trust}. Rows in `results/experiments/*.csv`, written here by "
        "`python -m loadtest report --readme README.md`; another Python, the worker kinds and every chart: "
        "[results/REPORT.md](results/REPORT.md).", "",
        "**What to deploy** (which model, how many processes):", "", md_table(_deploy_or_winners(directory, frames)), "",
        "**The verdict** (one row per question):", "",
        md_table(verdict(frames)), "", charts_md])


def _deploy_or_winners(directory: str, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tie-aware winner sets where the rows carry rounds, else the single-run table."""
    winners = RD.winners_table(RD.deploy_rankings(load_rounds(directory)))
    return winners if not winners.empty else deploy_table(frames)
