"""The report's lead: the verdict table and a section per experiment, from results/experiments/.

``python -m loadtest report`` calls :func:`experiment_sections` when results/experiments/ holds the
CSVs of ``python -m loadtest experiment``: the first section is the verdict (a row per question,
a column per engine with the measured figure, whether the law held, one line of why), then one
section per experiment in the order of ``experiment all``, each with its chart, the command that
made it, findings computed from the numbers, and its table. Every figure comes from those CSVs
(and, for the latency spectrum, the HdrHistogram files in results/experiments/latency/).
"""

from __future__ import annotations

import glob
import json
import os
import re

import pandas as pd

from loadtest.experiments.base import ENGINES
from loadtest.report import rounds as RD
from loadtest.report.document import Section, md_table

__all__ = ["load", "verdict", "deploy_table", "python_change", "interpreter_workers", "python_findings", "pythons", "charts", "findings", "experiment_sections", "ORDER", "QUESTIONS",
           "headline", "readme_block"]

ORDER = ("cost", "wait", "cores", "interference", "deploy", "latency", "connections", "multiplex")
QUESTIONS = {
    "cost": "What does each model's machinery cost per request?",
    "wait": "How many waits can each model hold?",
    "cores": "Who uses more than one core for CPU work?",
    "interference": "What does one slow request cost the others?",
    "deploy": "Which deployment serves a mixed load best?",
    "latency": "How close to its ceiling can it run before latency explodes?",
    "connections": "What does a held connection cost?",
    "multiplex": "When does HTTP/2 multiplexing help?",
}
COMMANDS = {name: f"python -m loadtest experiment {name}" for name in ORDER}


#: why an engine can be the costliest per request on one core (the cost row's "why")
_COSTLIEST = {"threadpool": "each request handed from the poller to a pool thread and back",
              "processpool": "blocking workers in processes sharing the one core; see cores for where it pays off",
              "selectors": "the loop's own bookkeeping per ready socket",
              "asyncio": "asyncio's callbacks and transports around each read"}

def load_rounds(directory: str, every_python: bool = False) -> dict[str, pd.DataFrame]:
    """The experiments' rows by name as written, one per round, the A/A twin's included (only
    those with a CSV in ``directory``; by default the first Python's, as :func:`load`)."""
    out = {}
    for name in ORDER:
        path = os.path.join(directory, f"{name}.csv")
        if os.path.exists(path):
            df = pd.read_csv(path, keep_default_na=False, na_values=[""])
            if not every_python and "python" in df.columns and not df.empty:
                df = df[df["python"] == df["python"].iloc[0]].reset_index(drop=True)
            if not df.empty:
                out[name] = df
    return out


def load(directory: str, every_python: bool = False) -> dict[str, pd.DataFrame]:
    """The experiments' cells by name: each configuration at each load point folded over its
    rounds into medians (:func:`loadtest.report.rounds.collapse`: ``rps_low``/``rps_high``, ``n``),
    the A/A twin left out (it has its own table).

    A run with ``--python A,B`` writes A's rows first: by default only the rows of the first
    Python of each CSV are returned (the verdict compares like with like); ``every_python``
    returns them all (for "What does Python 3.14 change?")."""
    out = {}
    for name, df in load_rounds(directory, every_python).items():
        df = RD.collapse(RD.split_control(df)[0])
        if not df.empty:
            out[name] = df
    return out


# -- what does another Python change? --------------------------------------------------------------

INTERPRETERS = " (interpreters)"
#: the run that puts two Pythons side by side (docs/interpreters.md)
PYTHON_COMMAND = "python -m loadtest experiment all --python python3,scripts/python3.14"


def _short(label: str) -> str:
    """``3.14.10`` of ``CPython 3.14.10 (GCC ...)``."""
    m = re.search(r"(\d+\.\d+\.\d+\S*)", str(label))
    return m.group(1) if m else str(label)


def pythons(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The Pythons the rows ran on, the reference (first) first."""
    out: list[str] = []
    for df in frames.values():
        if "python" in df.columns:
            for label in df["python"]:
                if label not in out:
                    out.append(label)
    return out


def python_change(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The same servers on the reference Python and on each other one, same run (``frames`` from
    ``load(dir, every_python=True)``): ``cost`` /plaintext on one core (h1 wrk -c64 and h2c
    h2load -c8 -m16: req/s and server CPU µs per request) and ``cores`` /cpu on one core, per
    engine and peer measured under both; the ratio is other / reference requests/s."""
    labels = pythons(frames)
    rows: list[dict] = []
    if len(labels) < 2:
        return pd.DataFrame(rows)
    ref = labels[0]
    picks = []
    cost = frames.get("cost")
    if cost is not None:
        for protocol in ("h1", "h2c -m16"):
            picks.append((f"cost {protocol} /plaintext, one core",
                          cost[(cost["workload"] == "plaintext") & (cost["protocol"] == protocol)]))
    cores = frames.get("cores")
    if cores is not None:
        picks.append(("cores /cpu, one core", cores[cores["server_cpus"] == 1]))
    latency = frames.get("latency")
    if latency is not None:  # the knee: the highest offered rate whose p99 stays under 10x the unloaded p99
        for workload in ("cpu", "plaintext"):
            picks.append((f"latency knee /{workload} (h2c open loop)",
                          latency[(latency["protocol"] == "h2c open loop knee") & (latency["workload"] == workload)]))
    for other in labels[1:]:
        for what, sub in picks:
            sub = sub[~sub["engine"].str.contains(" / ", regex=False) & ~sub["engine"].str.contains(INTERPRETERS, regex=False)]
            for engine in dict.fromkeys(sub["engine"]):
                a = sub[(sub["engine"] == engine) & (sub["python"] == ref)]
                b = sub[(sub["engine"] == engine) & (sub["python"] == other)]
                if a.empty or b.empty or not float(a.iloc[0]["rps"] or 0) or not float(b.iloc[0]["rps"] or 0):
                    continue  # a server that failed under one of them (its row says why) is not compared
                a, b = a.iloc[0], b.iloc[0]

                def cell(r):
                    us = r.get("server_cpu_us_per_req")
                    return f"{_f(r['rps'])} req/s" + (f", {_f(us)} µs" if pd.notna(us) and "cost" in what else "")
                rows.append({"measure": what, "server": engine, f"Python {_short(ref)}": cell(a),
                             f"Python {_short(other)}": cell(b), "ratio": f"{float(b['rps']) / float(a['rps']):.2f}x"})
    return pd.DataFrame(rows)


def _note_number(note: str, pattern: str) -> float | None:
    m = re.search(pattern, str(note))
    return float(m.group(1)) if m else None


def interpreter_workers(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Interpreter workers against process workers, same Python, same run (``frames`` from
    ``load(dir, every_python=True)``): the cost of one worker (``cost``, /plaintext on one core),
    /cpu on every core with W workers and its ratio to one worker (``cores``), start-up time and
    memory per worker (``connections``, idle); waits held (``wait``, the most in flight), the mixed
    open-loop load (``deploy``: p99) and one /cpu connection's effect on /plaintext (``interference``,
    k = 1: p99 and the share of probes stalled), W workers of each kind."""
    rows: list[dict] = []
    cost, cores, conns = frames.get("cost"), frames.get("cores"), frames.get("connections")
    wait, deploy, inter = frames.get("wait"), frames.get("deploy"), frames.get("interference")
    for label in pythons(frames):
        def of(df):
            return None if df is None else df[df["python"] == label]
        c, k, n, wt, dp, it = of(cost), of(cores), of(conns), of(wait), of(deploy), of(inter)
        interp = set()
        for df in (c, k, n, wt, dp, it):
            if df is not None:
                interp |= {e for e in df["engine"] if INTERPRETERS in str(e)}
        for name in sorted(interp, key=lambda e: (int(_model(e.replace(INTERPRETERS, ""))[1]), e)):
            model, w = _model(name.replace(INTERPRETERS, ""))
            process = model if w == 1 else f"{model} x{w}"
            if c is not None and w == 1:
                for protocol in ("h1", "h2c -m16"):
                    sub = c[(c["workload"] == "plaintext") & (c["protocol"] == protocol)]
                    a, b = sub[sub["engine"] == process], sub[sub["engine"] == name]
                    if len(a) and len(b) and float(a.iloc[0]["rps"] or 0):
                        a, b = a.iloc[0], b.iloc[0]
                        rows.append({"python": _short(label), "measure": f"cost {protocol} /plaintext, one core",
                                     "model": model, "workers": w,
                                     "in processes": f"{_f(a['rps'])} req/s, {_f(a['server_cpu_us_per_req'])} µs (one process)",
                                     "in interpreters": f"{_f(b['rps'])} req/s, {_f(b['server_cpu_us_per_req'])} µs",
                                     "ratio": f"{float(b['rps']) / float(a['rps']):.2f}x"})
            if k is not None and w > 1:
                a, b = k[k["engine"] == process], k[k["engine"] == name]
                if len(a) and len(b) and float(a.iloc[0]["rps"] or 0):
                    a, b = a.iloc[0], b.iloc[0]
                    ra = _note_number(a["note"], r"([0-9.]+)x its")
                    rb = _note_number(b["note"], r"([0-9.]+)x its")
                    rows.append({"python": _short(label), "measure": f"cores /cpu, {w} workers, every core",
                                 "model": model, "workers": w,
                                 "in processes": f"{_f(a['rps'])} req/s" + (f" ({ra:.2f}x one)" if ra else ""),
                                 "in interpreters": f"{_f(b['rps'])} req/s" + (f" ({rb:.2f}x one)" if rb else ""),
                                 "ratio": f"{float(b['rps']) / float(a['rps']):.2f}x"})
            if n is not None and w > 1:
                a = n[(n["engine"] == process) & (n["protocol"] == "h1 idle keep-alive")]
                b = n[(n["engine"] == name) & (n["protocol"] == "h1 idle keep-alive")]
                if len(a) and len(b):
                    a, b = a.iloc[0], b.iloc[0]
                    pa = _note_number(a["note"], r"adds ([0-9.]+) MiB PSS")
                    ra = _note_number(a["note"], r"MiB PSS \(([0-9.]+) MiB RSS")
                    rb = _note_number(b["note"], r"adds ([0-9.]+) MiB RSS")
                    sa = re.search(r"workers ready ([0-9]+)-([0-9]+) ms", str(a["note"]))
                    sb = re.search(r"workers ready ([0-9]+)-([0-9]+) ms", str(b["note"]))
                    if pa is not None and rb is not None:
                        rows.append({"python": _short(label), "measure": "memory per worker, idle", "model": model,
                                     "workers": w, "in processes": f"{pa:.1f} MiB PSS ({ra:.1f} MiB RSS) per extra process",
                                     "in interpreters": f"{rb:.1f} MiB RSS per worker",
                                     "ratio": f"{rb / pa:.2f}x PSS" if pa else "–"})
                    if sa and sb:
                        rows.append({"python": _short(label), "measure": "start-up per worker", "model": model,
                                     "workers": w, "in processes": f"{sa.group(1)}-{sa.group(2)} ms (fork)",
                                     "in interpreters": f"{sb.group(1)}-{sb.group(2)} ms (new interpreter, imports the lab)",
                                     "ratio": f"{float(sb.group(2)) / max(1.0, float(sa.group(2))):.0f}x"})
            if w == 1:
                continue
            base = {"python": _short(label), "model": model, "workers": w}
            if wt is not None and len(wt):
                top = wt["users"].max()  # the most waits in flight
                a, b = wt[(wt["engine"] == process) & (wt["users"] == top)], wt[(wt["engine"] == name) & (wt["users"] == top)]
                if len(a) and len(b) and float(a.iloc[0]["rps"] or 0):
                    a, b = a.iloc[0], b.iloc[0]
                    rows.append({**base, "measure": f"wait /io?ms=100, {top} in flight",
                                 "in processes": f"{_f(a['rps'])} req/s", "in interpreters": f"{_f(b['rps'])} req/s",
                                 "ratio": f"{float(b['rps']) / float(a['rps']):.2f}x"})
            if dp is not None:
                a, b = dp[dp["engine"] == process], dp[dp["engine"] == name]
                if len(a) and len(b) and float(a.iloc[0]["p99_ms"] or 0):
                    a, b = a.iloc[0], b.iloc[0]
                    rows.append({**base, "measure": "deploy: 90 % /plaintext + 10 % /cpu, open loop",
                                 "in processes": f"p99 {_f(a['p99_ms'], '.1f')} ms, {_f(a['rps'])} req/s",
                                 "in interpreters": f"p99 {_f(b['p99_ms'], '.1f')} ms, {_f(b['rps'])} req/s",
                                 "ratio": f"{float(b['p99_ms']) / float(a['p99_ms']):.2f}x p99"})
            if it is not None:
                a, b = it[(it["engine"] == process) & (it["users"] == 1)], it[(it["engine"] == name) & (it["users"] == 1)]
                if len(a) and len(b) and float(a.iloc[0]["p99_ms"] or 0):
                    a, b = a.iloc[0], b.iloc[0]
                    sa, sb = (_note_number(r["note"], r"([0-9]+)% of probes stalled") for r in (a, b))
                    rows.append({**base, "measure": "interference: /plaintext while 1 connection runs /cpu",
                                 "in processes": f"p99 {_f(a['p99_ms'], '.1f')} ms"
                                                 + (f", {sa:.0f} % stalled" if sa is not None else ""),
                                 "in interpreters": f"p99 {_f(b['p99_ms'], '.1f')} ms"
                                                    + (f", {sb:.0f} % stalled" if sb is not None else ""),
                                 "ratio": f"{float(b['p99_ms']) / float(a['p99_ms']):.2f}x p99"})
    return pd.DataFrame(rows)


def python_findings(frames: dict[str, pd.DataFrame]) -> list[str]:
    """Sentences computed from :func:`python_change` and :func:`interpreter_workers`."""
    out = []
    change = python_change(frames)
    if not change.empty:
        labels = pythons(frames)
        for what in dict.fromkeys(change["measure"]):
            sub = change[change["measure"] == what]
            ratios = [float(r.rstrip("x")) for r in sub["ratio"]]
            ours = sub[sub["server"].isin(ENGINES)]
            if not ours.empty:
                best = ours.iloc[[float(r.rstrip("x")) for r in ours["ratio"]].index(max(float(r.rstrip("x")) for r in ours["ratio"]))]
                out.append(f"{what}: Python {_short(labels[1])} against {_short(labels[0])}, the same code: "
                           f"{min(ratios):.2f}x to {max(ratios):.2f}x over {len(sub)} servers "
                           f"(the engines' best: {best['server']} {best['ratio']}).")
    workers = interpreter_workers(frames)
    for _, r in workers.iterrows():
        out.append(f"{r['measure']} ({r['model']}, Python {r['python']}): interpreters {r['in interpreters']} against "
                   f"processes {r['in processes']} ({r['ratio']}).")
    return out


def _f(x, fmt: str = ",.0f") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return "–" if v != v else format(v, fmt)


def _rate(r: pd.Series) -> str:
    """A row's requests/s as the verdict shows it: ``failed`` where no answer was counted (never
    0 req/s), the median with its interval over the rounds, and the share of answers that were
    errors (non-2xx, socket errors) where there were any."""
    rps = pd.to_numeric(r.get("rps"), errors="coerce")
    note = str(r.get("note", ""))
    if pd.isna(rps):
        if note.startswith("failed"):
            return note[:100]
        return "failed" + (f" ({note[:80]})" if note and note != "nan" else "")
    lo, hi, n = r.get("rps_low"), r.get("rps_high"), r.get("n", 1)
    text = f"{_f(rps)} req/s"
    if n is not None and not pd.isna(n) and int(n) > 1 and not pd.isna(lo):
        text = f"{_f(rps)} [{_f(lo)}, {_f(hi)}] req/s (n = {int(n)})"
    m = re.search(r"(\d+) of (\d+) answers were not 2xx", note)
    if m and int(m.group(2)):
        text += f", {int(m.group(1)) / int(m.group(2)):.0%} of answers errors"
    elif "without an answer" in note:
        text += ", with socket errors"
    return text


def _held(df: pd.DataFrame) -> str:
    judged = df[df["held"].isin(["yes", "NO"])]
    if judged.empty:
        return "–"
    yes = int((judged["held"] == "yes").sum())
    return f"{yes}/{len(judged)} rows"


def _is_hybrid(name: str) -> bool:
    """``MODEL xW`` of one of the four engines (a hybrid, or processpool at another W)."""
    model, _, w = str(name).partition(" x")
    return model in ENGINES and w.isdigit()


def _columns(names) -> list[str]:
    """The four engines, then the hybrids among ``names`` (by W, then the engines' order)."""
    hybrids = sorted({n for n in names if _is_hybrid(n)},
                     key=lambda n: (int(n.partition(" x")[2]), ENGINES.index(n.partition(" x")[0])))
    return list(ENGINES) + hybrids


def _engines(df: pd.DataFrame) -> list[str]:
    present = set(df["engine"])
    return [e for e in _columns(present) if e in present]


# -- per experiment: (cells by engine, law held, why, findings) -----------------------------------------

def _cost(df: pd.DataFrame) -> tuple[dict, str, str, list[str]]:
    h1 = df[(df["protocol"] == "h1") & (df["workload"] == "plaintext")]
    cells = {}
    for e in _engines(df):
        r = h1[h1["engine"] == e]
        if not r.empty:
            r = r.iloc[0]
            cells[e] = f"{_f(r['rps'])} req/s, {_f(r['server_cpu_us_per_req'], '.0f')} µs CPU/req (h1 /plaintext)"
    ratios = df[df["engine"].str.contains(" / ", regex=False)]
    law = _held(ratios)
    parts = [f"{r['engine']} {float(re.search(r'ratio ([0-9.]+)', r['note']).group(1)):.2f}x "
             f"({r['protocol']}, target {r['expected']})" for _, r in ratios.iterrows()
             if re.search(r"ratio ([0-9.]+)", str(r["note"]))]
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
            m = re.search(r"([0-9.]+)x its one-process rate", str(r["note"]))
            cells[e] = (f"{m.group(1) if m else '?'}x one process ({_f(r['rps'])} req/s on "
                        f"{int(r['server_cpus'])} cores)")
            findings.append(f"{e}: {_f(r['rps'])} req/s on {int(r['server_cpus'])} cores, {r['note']}; law "
                            f"{r['expected']}: {'held' if r['held'] == 'yes' else 'NOT held'}.")
            continue
        if one.empty or many.empty:
            continue
        ratio = float(many.iloc[0]["rps"]) / max(1e-9, float(one.iloc[0]["rps"]))
        cells[e] = f"{ratio:.2f}x its one-core rate ({_f(many.iloc[0]['rps'])} req/s on {int(many.iloc[0]['server_cpus'])} cores)"
        findings.append(f"{e}: {_f(one.iloc[0]['rps'])} req/s on one core, {_f(many.iloc[0]['rps'])} on "
                        f"{int(many.iloc[0]['server_cpus'])} ({ratio:.2f}x); law {many.iloc[0]['expected']}: "
                        f"{'held' if many.iloc[0]['held'] == 'yes' else 'NOT held'}.")
    peers = df[df["engine"].map(lambda n: " x" in str(n) and not _is_hybrid(n))]
    if not peers.empty:
        findings.append("Peers, same run: " + ", ".join(
            f"{r['engine']} {_f(r['rps'])} req/s" + (f" ({r['note'].split(' (')[0]})" if "its one-process" in str(r["note"]) else "")
            for _, r in peers.iterrows()) + ".")
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
    for e in _engines(df):
        k = knees[(knees["engine"] == e) & (knees["workload"] == "cpu")]
        if not k.empty:
            cells[e] = f"/cpu knee {_f(k.iloc[0]['rps'])} req/s ({k.iloc[0]['expected'].replace('knee at ', '')})"
        for _, r in knees[knees["engine"] == e].iterrows():
            findings.append(f"{e} /{r['workload']}: {r['expected']}, {_f(r['rps'])} req/s; {r['note']}.")
    flagged = int((runs["held"] == "NO").sum())
    findings.append(f"{flagged} of {len(runs)} open-loop runs fell 5 % short of the offered rate below the ceiling "
                    "(generator-bound; flagged in the table).")
    why = ("latency is flat until the offered load nears the ceiling, then queueing takes over: the knee is "
           "where p99 passes 10x its unloaded value")
    return cells, f"{flagged} generator-bound", why, findings


def _kib(note: str) -> float | None:
    m = re.search(r"([0-9.]+) KiB RSS", str(note))
    return float(m.group(1)) if m else None


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
        best = h2.loc[h2["rps"].idxmax()]
        worst = h2.loc[h2["rps"].idxmin()]
        cells[e] = (f"/io: {_f(best['rps'])} req/s at {best['protocol']} vs h1 {_f(h1.iloc[0]['rps'])}; "
                    f"worst {worst['protocol']} {_f(worst['rps'])}")
        findings.append(f"{e} /io: " + ", ".join(f"{r['protocol']} {_f(r['rps'])}" for _, r in sub.iterrows())
                        + " req/s.")
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


SUMMARIZE = {"cost": _cost, "wait": _wait, "cores": _cores, "interference": _interference, "deploy": _deploy,
             "latency": _latency, "connections": _connections, "multiplex": _multiplex}


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

def _model(name: str) -> tuple[str, int]:
    """``("selectors", 2)`` of ``"selectors x2"``; the plain engines' W from their rows."""
    model, _, w = str(name).partition(" x")
    return model, int(w) if w.isdigit() else 1


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
               "figure": figure(best), "runner-up": "–", "by": "–", "why": why(best), "python": best["python"]}
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


# -- charts -------------------------------------------------------------------------------------------

def charts(name: str, df: pd.DataFrame, exp_dir: str, out_dir: str | None) -> list[str]:
    """Draw the experiment's chart(s) into ``out_dir`` (PNG + SVG), or show them (``out_dir``
    None: the notebook); returns their names."""
    import matplotlib.pyplot as plt

    from loadtest.report import charts as C

    def save(fig, chart: str) -> str:
        if out_dir is None:
            plt.show()
        else:
            C.save(fig, out_dir, chart)
        plt.close(fig)
        return chart

    engines = _engines(df)

    def color(e: str) -> str:  # a hybrid in its model's colour; a peer grey
        return C.ENGINE_COLORS.get(_model(e)[0], "#999999")

    def style(e: str) -> str:  # a hybrid dashed
        return "o--" if _is_hybrid(e) else "o-"

    if name == "cost":
        out = []
        for proto in [p for p in ("h1", "h2c -m1", "h2c -m16") if p in set(df["protocol"])]:
            sub = df[(df["protocol"] == proto) & (df["workload"] == "plaintext")
                     & ~df["engine"].str.contains(" / ", regex=False)].sort_values("rps")
            fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.35 * len(sub) + 1.5))
            colors = [C.ENGINE_COLORS.get(e, "#999999") for e in sub["engine"]]
            a.barh(sub["engine"], sub["rps"], color=colors)
            a.set_xlabel("requests/s (one core)")
            b.barh(sub["engine"], sub["server_cpu_us_per_req"], color=colors)
            b.set_xlabel("server CPU µs per request")
            b.set_yticklabels([])
            fig.suptitle(f"cost: /plaintext, {proto} (grey: peers)")
            out.append(save(fig, f"exp_cost_{proto.replace(' ', '').replace('-', '_')}"))
        return out
    if name == "wait":
        fig, ax = plt.subplots(figsize=(6, 4))
        for e in engines:
            sub = df[df["engine"] == e].sort_values("users")
            ax.plot(sub["users"], sub["rps"], style(e), color=color(e), label=e)
            law = [float(str(x).split()[0]) for x in sub["expected"]]
            ax.plot(sub["users"], law, ":", color=color(e))
        _label(ax, "requests in flight N", "requests/s (dotted: Little's law)", "wait: /io?ms=100", logx=True)
        return [save(fig, "exp_wait")]
    if name == "cores":
        names = engines + [n for n in dict.fromkeys(df["engine"]) if n not in engines]  # then the peers
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
        for i, e in enumerate(names):
            sub = df[df["engine"] == e]
            one = sub[sub["server_cpus"] == 1]["rps"]
            many = sub[sub["server_cpus"] > 1]["rps"]
            ax.bar(i - 0.2, one.iloc[0] if len(one) else 0, 0.4, color=color(e), alpha=0.5)
            ax.bar(i + 0.2, many.iloc[0] if len(many) else 0, 0.4, color=color(e))
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_ylabel("/cpu requests/s")
        ax.set_title("cores: one core (light) against every core (dark); peers grey")
        fig.tight_layout()
        return [save(fig, "exp_cores")]
    if name == "deploy":
        sub = df.sort_values("p99_ms", ascending=False)
        fig, ax = plt.subplots(figsize=(6, max(3, 0.3 * len(sub))))
        ax.barh(range(len(sub)), sub["p99_ms"], color=[color(e) for e in sub["engine"]],
                alpha=1.0)
        ax.set_yticks(range(len(sub)), [f"{e}{'' if h == 'yes' else ' (short of the rate)'}"
                                        for e, h in zip(sub["engine"], sub["held"])])
        ax.set_xscale("log")
        ax.set_xlabel("p99, ms (from the intended send time)")
        ax.set_title("deploy: 90 % /plaintext, 10 % /cpu, open loop, " + str(sub.iloc[0]["expected"]))
        fig.tight_layout()
        return [save(fig, "exp_deploy")]
    if name == "interference":
        fig, ax = plt.subplots(figsize=(6, 4))
        for e in engines:
            sub = df[df["engine"] == e].sort_values("users")
            ax.plot(sub["users"], sub["p99_ms"], style(e), color=color(e), label=e)
        _label(ax, "connections running /cpu (k)", "/plaintext p99, ms", "interference")
        return [save(fig, "exp_interference")]
    if name == "latency":
        return _latency_charts(df, exp_dir, save)
    if name == "connections":
        fig, ax = plt.subplots(figsize=(6, 3.5))
        protos = list(dict.fromkeys(df["protocol"]))
        for j, proto in enumerate(protos):
            for i, e in enumerate(engines):
                r = df[(df["engine"] == e) & (df["protocol"] == proto)]
                kib = _kib(r.iloc[0]["note"]) if len(r) else None
                ax.bar(i + (j - 0.5) * 0.4, kib or 0, 0.4, color=color(e), alpha=0.5 if j == 0 else 1.0)
        ax.set_xticks(range(len(engines)), engines, rotation=30, ha="right")
        ax.set_ylabel("server RSS per held connection, KiB")
        ax.set_title("connections: " + " (light) / ".join(protos) + " (dark)")
        return [save(fig, "exp_connections")]
    if name == "multiplex":
        io = df[df["workload"] == "io"]
        shapes = list(dict.fromkeys(io["protocol"]))
        fig, ax = plt.subplots(figsize=(7, 4))
        for e in engines:
            sub = io[io["engine"] == e].set_index("protocol").reindex(shapes)
            ax.plot(range(len(shapes)), sub["rps"], "o-", color=C.ENGINE_COLORS[e], label=e)
        ax.set_xticks(range(len(shapes)), shapes, rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel("/io?ms=100 requests/s")
        ax.set_title("multiplex: C connections x M streams = 128")
        ax.legend()
        return [save(fig, "exp_multiplex")]
    return []


def _label(ax, xlabel: str, ylabel: str, title: str, logx: bool = False) -> None:
    """Log y (and optionally x) axis, labels, title and the engines' legend."""
    if logx:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


def _latency_charts(df: pd.DataFrame, exp_dir: str, save) -> list[str]:
    import matplotlib.pyplot as plt

    from loadtest.report import charts as C

    runs = df[df["protocol"] == "h2c open loop"]
    out = []
    for workload in dict.fromkeys(runs["workload"]):
        sub = runs[runs["workload"] == workload]
        engines = _engines(sub)
        fig, axes = plt.subplots(1, len(engines), figsize=(3.6 * len(engines), 3.4), squeeze=False, sharey=True)
        for ax, e in zip(axes[0], engines):
            pts = []
            for _, r in sub[sub["engine"] == e].iterrows():
                offered = float(str(r["expected"]).split()[1])
                p999 = re.search(r"p99\.9 ([0-9.]+) ms", str(r["note"]))
                pts.append((offered, r["p50_ms"], r["p99_ms"], float(p999.group(1)) if p999 else None, r["max_ms"],
                            r["held"] == "NO"))
            pts.sort()
            xs = [p[0] for p in pts]
            for k, (label, color) in enumerate((("p50", "#6baed6"), ("p99", "#2171b5"), ("p99.9", "#08306b"),
                                                 ("max", "#999999"))):
                ax.plot(xs, [p[1 + k] for p in pts], "o-", color=color, label=label, markersize=3)
            for p in pts:
                if p[5]:
                    ax.plot([p[0]], [p[2]], "x", color="red")
            ax.set_yscale("log")
            ax.set_xlabel("offered requests/s")
            ax.set_title(e, color=C.ENGINE_COLORS[e])
        axes[0][0].set_ylabel("latency, ms (from the intended send time)")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"latency against offered load, /{workload} (red x: generator-bound)")
        out.append(save(fig, f"exp_latency_{workload}"))
        spectrum = _spectrum(exp_dir, workload, engines, save)
        if spectrum:
            out.append(spectrum)
    return out


def _spectrum(exp_dir: str, workload: str, engines: list[str], save) -> str | None:
    """HdrHistogram-style percentile spectrum at 80 % of each engine's ceiling (log 1/(1-p) axis)."""
    import matplotlib.pyplot as plt
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader

    from loadtest.report import charts as C
    from loadtest.users.openloop import HIGHEST_US, SIGNIFICANT_DIGITS

    fig, ax = plt.subplots(figsize=(6.5, 4))
    drawn = False
    for e in engines:
        path = os.path.join(exp_dir, "latency", f"{e}-{workload}-80_latency.hdr")
        if not os.path.exists(path):
            continue
        h = HistogramLogReader(path, HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)).get_next_interval_histogram()
        if h is None or not h.get_total_count():
            continue
        ps = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
        xs = [1 / (1 - p / 100) for p in ps]
        ax.plot(xs, [h.get_value_at_percentile(p) / 1000 for p in ps], "o-", color=C.ENGINE_COLORS[e], label=e,
                markersize=3)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xticks([2, 10, 100, 1000, 10000], ["50%", "90%", "99%", "99.9%", "99.99%"])
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency, ms")
    ax.set_title(f"percentile spectrum at 80 % of the ceiling, /{workload}")
    ax.legend()
    return save(fig, f"exp_spectrum_{workload}")


def experiment_sections(directory: str, out_dir: str) -> list[Section]:
    """What to deploy, the verdict, what another Python changes, then one section per experiment."""
    frames = load(directory)
    if not frames:
        return []
    raw = load_rounds(directory)
    revs = sorted({str(r) for df in frames.values() for r in df["git_rev"].unique()})
    sections = [rigor_section(directory)]
    winners = RD.winners_table(RD.deploy_rankings(raw))
    deploy = deploy_table(frames)
    if not winners.empty:
        sections.append(Section(
            "deploy-what", "What to deploy",
            "For each workload, the deployments the data cannot tell apart from the best (model x workers, the "
            "peers included, the same rounds): a single name only where the best's paired ratio to every other "
            f"clears {RD.stats.THRESHOLD:.0%} over its whole 95 % interval, else *tie* and the set. Medians of the "
            "rounds with their intervals; rounds won counts the rounds in which each had the best figure. From "
            f"results/experiments/cores.csv, wait.csv and deploy.csv (git {', '.join(revs)}).", [], winners, []))
    elif not deploy.empty:
        sections.append(Section(
            "deploy-what", "What to deploy",
            "Which model, and how many processes: for each workload the best deployment measured here "
            f"(model x workers, the peers included, the same run), its figure, the runner-up and by how much, "
            "and why. Computed from results/experiments/cores.csv, wait.csv and deploy.csv "
            f"(git {', '.join(revs)}).", [], deploy, []))
    ran_on = ", ".join(sorted({str(p) for df in frames.values() if "python" in df for p in df["python"].unique()}))
    sections += [Section(
        "verdict", "The verdict",
        "One row per question, one column per engine and per hybrid (model x W processes): the measured figure, "
        "whether the law held (rows "
        "within the law / rows judged), and why. From results/experiments/*.csv (git " + ", ".join(revs)
        + f"); `python -m loadtest experiment all` made them; every figure ran on {ran_on}.", [], verdict(frames), [])]
    sections += python_sections(directory)
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
            f"Command: `{COMMANDS[name]}` (rows in results/experiments/{name}.csv). {why.capitalize()}.",
            charts(name, df, directory, out_dir), table, findings))
    return sections


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
                   "the median (loadtest/report/stats.py; with 5 rounds that is min-max, 93.8 % coverage). The "
                   "table is the A/A control: the same configuration under two names, paired by round.",
                   [], control, findings)


def python_sections(directory: str) -> list[Section]:
    """"What does Python 3.14 change?": the same servers under each Python of the run, then
    interpreter workers against process workers; none when the rows ran on one Python only."""
    every = load(directory, every_python=True)
    labels = pythons(every)
    if len(labels) < 2:
        return []
    change, workers = python_change(every), interpreter_workers(every)
    out = [Section(
        "python", f"What does Python {_short(labels[1])} change?",
        f"The same code, servers on {labels[0]} and on {labels[1]} in one run (`{PYTHON_COMMAND}`; every "
        "row of results/experiments/*.csv carries its python and gil columns). Requests/s and the server's CPU µs "
        "per request on one core, and the latency knee (open loop, each Python against its own ceiling); the "
        "ratio is the newer Python over the older; every peer under the same Python as the engines it is "
        "compared with.",
        [], change, python_findings(every))]
    if not workers.empty:
        out.append(Section(
            "interpreters", "Interpreter workers against process workers",
            "`./start_server --workers W --worker-kind interpreter` runs the W copies in subinterpreters of one "
            "process (one GIL each, PEP 684/734) instead of forked processes; same Python, same run. Cost: one "
            "worker against the one-process engine; cores: W workers on every core, and each kind's ratio to its "
            "own one-worker rate; memory: idle, per worker (a process: PSS, its copy-on-write pages shared; an "
            "interpreter: RSS growth of the one process); start-up: from the supervisor's start of a worker to "
            "its serving; wait, deploy and interference: W workers of each kind, as in those experiments.",
            [], workers, []))
    return out


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
    ``<!-- verdict:start -->`` and ``<!-- verdict:end -->`` markers: the verdict table, the
    headline figures and the charts (``out_dir``: where they are; ``chart_rel``: the same, relative
    to the README), all from the committed experiments' CSVs."""
    frames = load(directory)
    revs = sorted({str(r) for df in frames.values() for r in df["git_rev"].unique()})
    cpus = sorted({str(r) for df in frames.values() for r in df["cpu"].unique()})
    charts_md = " ".join(f"![{n}]({chart_rel}/{n}.png)" for n in ("exp_cores",)  # one chart; the rest: REPORT.md
                         if os.path.exists(os.path.join(out_dir, f"{n}.png")))
    labels = pythons(load(directory, every_python=True))
    command = PYTHON_COMMAND if len(labels) > 1 else "python -m loadtest experiment all"
    ran_on = f"; the tables below: {labels[0]}" if len(labels) > 1 else ""
    return "\n".join([
        f"Measured by `{command}` (git {', '.join(revs)}; {', '.join(cpus)}{ran_on}); rows in "
        "`results/experiments/*.csv`, written here by `python -m loadtest report --readme README.md`.", "",
        "**What to deploy** (which model, how many processes):", "", md_table(_deploy_or_winners(directory, frames)), "",
        "**The verdict** (one row per question):", "",
        md_table(verdict(frames)), "", md_table(headline(frames)), "", charts_md, *_readme_python(directory)])


def _deploy_or_winners(directory: str, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tie-aware winner sets where the rows carry rounds, else the single-run table."""
    winners = RD.winners_table(RD.deploy_rankings(load_rounds(directory)))
    return winners if not winners.empty else deploy_table(frames)


def _readme_python(directory: str) -> list[str]:
    """The README's lines on another Python, when the rows ran on more than one."""
    every = load(directory, every_python=True)
    labels = pythons(every)
    if len(labels) < 2:
        return []
    change, workers = python_change(every), interpreter_workers(every)
    lines = ["", f"**What Python {_short(labels[1])} changes** (same run, {labels[0]} against {labels[1]}; "
             f"`{PYTHON_COMMAND}`):", "",
             md_table(change)]
    if not workers.empty:
        lines += ["", "**Interpreter workers against process workers** (`--worker-kind interpreter`, same Python, "
                  "same run):", "", md_table(workers)]
    return lines


def latency_json(directory: str) -> list[dict]:
    """Every open-loop run's summary (``*_openloop.json`` in ``directory``/latency), for the notebook."""
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "latency", "*_openloop.json"))):
        with open(path) as f:
            d = json.load(f)
        d["run"] = os.path.basename(path).removesuffix("_openloop.json")
        out.append(d)
    return out
