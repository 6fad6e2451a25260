"""What another Python changes: the same servers under each Python of one run, and interpreter
workers against process workers (``python -m loadtest experiment all --python python3,scripts/python3.14``).
Tables and findings from the experiments' cells (loadtest/report/frames.py)."""

from __future__ import annotations

import os
import re

import pandas as pd

from loadtest.experiments.base import ENGINES
from loadtest.harness.servers import ROOT
from loadtest.report.document import Section, md_table
from loadtest.report.frames import _f, _model, _short, load

__all__ = ["PYTHON_COMMAND", "pythons", "python_change", "interpreter_workers", "python_findings",
           "python_sections", "readme_python"]

# -- what does another Python change? --------------------------------------------------------------

INTERPRETERS = " (interpreters)"
#: the run that puts two Pythons side by side (docs/interpreters.md)
PYTHON_COMMAND = "python -m loadtest experiment all --python python3,scripts/python3.14"


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
                if a.empty or b.empty or not _positive(a.iloc[0]["rps"]) or not _positive(b.iloc[0]["rps"]):
                    continue  # failed, or no knee, under one of them (its row says why): not compared
                a, b = a.iloc[0], b.iloc[0]

                def cell(r):
                    us = r.get("server_cpu_us_per_req")
                    lo, hi, n = r.get("rps_low"), r.get("rps_high"), r.get("n", 1)
                    band = (f" [{_f(lo)}, {_f(hi)}]" if pd.notna(lo) and pd.notna(n) and int(n) > 1 else "")
                    return f"{_f(r['rps'])}{band} req/s" + (f", {_f(us)} µs" if pd.notna(us) and "cost" in what else "")
                rows.append({"measure": what, "server": engine, f"Python {_short(ref)}": cell(a),
                             f"Python {_short(other)}": cell(b), "ratio": f"{float(b['rps']) / float(a['rps']):.2f}x"})
    return pd.DataFrame(rows)


def _positive(x) -> bool:
    """A measured, positive figure (not empty, not NaN, not 0)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return False
    return v == v and v > 0


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


def _how_run(directory: str) -> str:
    """How the rows were made: one run of PYTHON_COMMAND, or pieces named in the folder's manifest.json."""
    path = os.path.join(directory, "manifest.json")
    if os.path.exists(path):
        return (f"in the pieces {os.path.relpath(os.path.abspath(path), ROOT)} names (`python -m loadtest "
                f"experiment all --only ... --python ... --append`, each Python in turn")
    return f"in one run (`{PYTHON_COMMAND}`"


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
        f"The same code, servers on {labels[0]} and on {labels[1]} {_how_run(directory)}; every "
        f"row of {os.path.relpath(os.path.abspath(directory), ROOT)}/*.csv carries its python and gil columns). Requests/s and the server's CPU µs "
        "per request on one core, and the latency knee (open loop, each Python against its own ceiling); the "
        "ratio is the newer Python's median over the older's (not paired: the Pythons ran one after the "
        "other, so drift between the passes is in it); every peer under the same Python as the engines it is "
        "compared with. The builds differ beyond the version (each label names its compiler; "
        "scripts/python3.14 runs Debian sid's build, another libc and GCC): a ratio is the build's.",
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


def readme_python(directory: str) -> list[str]:
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
