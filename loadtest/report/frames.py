"""The experiments' rows as the report reads them, and the small helpers every part of the report
shares: which CSVs (``load_rounds``: one row per round; ``load``: cells folded over the rounds, the
A/A twin apart), the questions in the order of ``experiment all``, names (engines, hybrids) and
number formats.
"""

from __future__ import annotations

import glob
import json
import os
import re

import pandas as pd

from loadtest.experiments.base import ENGINES
from loadtest.report import rounds as RD

__all__ = ["ORDER", "QUESTIONS", "COMMANDS", "load_rounds", "load", "latency_json"]

ORDER = ("cost", "wait", "cores", "interference", "deploy", "latency", "connections", "multiplex", "db")
QUESTIONS = {
    "cost": "What does each model's machinery cost per request?",
    "wait": "How many waits can each model hold?",
    "cores": "Who uses more than one core for CPU work?",
    "interference": "What does one slow request cost the others?",
    "deploy": "Which deployment serves a mixed load best?",
    "latency": "How close to its ceiling can it run before latency explodes?",
    "connections": "What does a held connection cost?",
    "multiplex": "When does HTTP/2 multiplexing help?",
    "db": "What does a real database change?",
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
            if "requests" in df and "rps" in df:  # no answer counted is a failed run, not 0 req/s
                # (rows of the harness before repeats wrote 0; it now leaves the rate empty)
                ratio = df["engine"].astype(str).str.contains(" / ", regex=False)  # a ratio row counts no request
                df.loc[(pd.to_numeric(df["requests"], errors="coerce") == 0) & ~ratio, "rps"] = float("nan")
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
        raw = RD.split_control(df)[0]
        df = RD.collapse(raw)
        if not df.empty:
            if name == "cost" and RD.has_rounds(raw):  # the targets: paired ratios from each round's figures
                df = RD.target_ratios(raw, df)
            if name == "latency" and RD.has_rounds(raw):  # the knee, judged on the rounds' intervals
                knees = RD.knees(raw)
                df["knee_interval"] = [knees.get((e, w), "") if p == "h2c open loop knee" else ""
                                       for e, w, p in zip(df["engine"], df["workload"], df["protocol"])]
            out[name] = df
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
    """``"20/20 rows judged held; 4 failed; 2 inconclusive"``: every row is counted somewhere
    (a cell is held or broken when every round agrees, else inconclusive)."""
    judged = df[df["held"].isin(["yes", "NO"])]
    failed = int(pd.to_numeric(df["rps"], errors="coerce").isna().sum()) if "rps" in df else 0
    unsure = int((df["held"] == "inconclusive").sum())
    extra = (f"; {failed} failed" if failed else "") + (f"; {unsure} inconclusive" if unsure else "")
    if judged.empty:
        return "–" + extra
    yes = int((judged["held"] == "yes").sum())
    return f"{yes}/{len(judged)} rows" + extra


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


def _model(name: str) -> tuple[str, int]:
    """``("selectors", 2)`` of ``"selectors x2"``; the plain engines' W from their rows."""
    model, _, w = str(name).partition(" x")
    return model, int(w) if w.isdigit() else 1


def latency_json(directory: str) -> list[dict]:
    """Every open-loop run's summary (``*_openloop.json`` in ``directory``/latency), for the notebook."""
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "latency", "**", "*_openloop.json"), recursive=True)):
        with open(path) as f:
            d = json.load(f)
        d["run"] = os.path.basename(path).removesuffix("_openloop.json")
        out.append(d)
    return out


def manifest(directory: str) -> list[dict]:
    """The pieces of the run in ``directory``, from its manifest.json (the harness's record: one
    dict per experiment and Python, with ``command``); [] where there is none."""
    import json

    path = os.path.join(directory, "manifest.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _short(label: str) -> str:
    """A build's short name: ``3.14.10`` of ``CPython 3.14.10 (GCC ...)``; ``3.14.7t`` of a
    free-threaded build, ``3.14.7t PYTHON_GIL=1`` of one run with its GIL turned on (two builds of
    one version must not share a name)."""
    m = re.search(r"(\d+\.\d+\.\d+\S*)", str(label))
    name = m.group(1) if m else str(label)
    if m and "free-threaded" in str(label):
        name += "t"
    if m and "PYTHON_GIL=1" in str(label):
        name += " PYTHON_GIL=1"
    return name

def _kib(note: str) -> float | None:
    m = re.search(r"([0-9.]+) KiB RSS", str(note))
    return float(m.group(1)) if m else None
