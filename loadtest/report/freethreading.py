"""What free-threading changes: the cores experiment's rows under a GIL build, a free-threaded build
(3.14t) and the same 3.14t binary with ``PYTHON_GIL=1``, side by side (``python -m loadtest experiment
cores --python scripts/python3.14,scripts/python3.14t,scripts/python3.14t-gil``).

Every figure is a cell's median over its rounds with its 95 % interval (loadtest/report/stats.py);
a scaling figure is a **paired** ratio (one ratio per round, the configuration against its own
one-copy baseline measured in the same round), with its interval, and the verdict of
:func:`loadtest.report.stats.compare` against the ideal: *scales* where the ratio's interval lies
wholly above 1 + the threshold (3 %), *a tie with one* where it reaches into 1 +- 3 %, *slower*
below. Builds are not paired with each other (they ran one after the other): a ratio between builds
is a ratio of medians, and says so.
"""

from __future__ import annotations

import pandas as pd

from loadtest.report import rounds as RD
from loadtest.report import stats
from loadtest.report.document import Section
from loadtest.report.frames import _short, load_rounds, manifest

__all__ = ["COMMAND", "CONFIGURATIONS", "builds", "scaling_table", "tax_table", "freethreading_findings",
           "freethreading_sections"]

#: the run that puts the three builds side by side
COMMAND = ("python -m loadtest experiment cores --python "
           "scripts/python3.14,scripts/python3.14t,scripts/python3.14t-gil")

#: (row label, engine, workload, baseline engine, whether the baseline ran on one core): /cpu on every core
CONFIGURATIONS = [
    ("threadpool, 32 threads", "threadpool", "cpu", "threadpool", True),
    ("threadpool --threads 2", "threadpool --threads 2", "cpu", "threadpool --threads 1", False),
    ("threadpool --threads 4", "threadpool --threads 4", "cpu", "threadpool --threads 1", False),
    ("threadpool --threads 2, /cpu?shared=1", "threadpool --threads 2", "cpu-shared", "threadpool --threads 1", False),
    ("selectors x2 (threads)", "selectors x2 (threads)", "cpu", "selectors x1 (threads)", True),
    ("asyncio x2 (threads)", "asyncio x2 (threads)", "cpu", "asyncio x1 (threads)", True),
    ("threadpool x2 (threads)", "threadpool x2 (threads)", "cpu", "threadpool x1 (threads)", True),
    ("selectors x2 (interpreters)", "selectors x2 (interpreters)", "cpu", "selectors x1 (interpreters)", True),
    ("selectors x2 (processes)", "selectors x2", "cpu", "selectors", True),
    ("asyncio x2 (processes)", "asyncio x2", "cpu", "asyncio", True),
    ("processpool (a process per core)", "processpool", "cpu", "processpool", True),
]


def builds(df: pd.DataFrame) -> list[str]:
    """The Pythons of ``df`` (the cores rows) when at least one is a free-threaded build, in the
    order they ran; [] otherwise."""
    labels = list(dict.fromkeys(df["python"].astype(str))) if "python" in df.columns else []
    return labels if any("free-threaded" in label for label in labels) else []


def _name(label: str) -> str:
    """A build's short name: ``3.14.10``, ``3.14.7t``, ``3.14.7t PYTHON_GIL=1`` (frames._short)."""
    return _short(label)


def _values(df: pd.DataFrame, engine: str, workload: str, python: str, one_core: bool | None) -> dict[int, float]:
    """``{round: req/s}`` of one cell (``one_core``: the row on one core, on every core, or either)."""
    sub = df[(df["engine"] == engine) & (df["workload"] == workload) & (df["python"] == python)]
    if one_core is not None and "server_cpus" in sub:
        cpus = pd.to_numeric(sub["server_cpus"], errors="coerce")
        sub = sub[(cpus == 1) if one_core else (cpus > 1)]
    out = {}
    for _, r in sub.iterrows():
        v = pd.to_numeric(r.get("rps"), errors="coerce")
        if pd.notna(v) and pd.notna(r.get("round")):
            out[int(r["round"])] = float(v)
    return out


def _verdict(c: stats.Comparison) -> str:
    if c.ratio is None:
        return "–"
    word = {"A": "scales", "B": "slower than one", "tie": "a tie with one"}[c.verdict]
    return f"{RD.fmt_interval(c.ratio, '.2f', 'x')} ({word})"


def scaling_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of :data:`CONFIGURATIONS`; per build, /cpu on every core (median
    [interval] req/s) and its paired ratio to its one-copy baseline with the verdict."""
    labels = builds(df)
    rows = []
    for label, engine, workload, base, base_one_core in CONFIGURATIONS:
        row = {"configuration": label}
        seen = False
        for python in labels:
            # the plain engines ran on one core and on every core under one name: pick each side
            many = _values(df, engine, workload, python, False if engine == base else None)
            if not many:
                row[_name(python)] = "–"
                continue
            seen = True
            one = _values(df, base, workload, python, True if base_one_core else None)
            rate = RD.fmt_interval(stats.median_ci(list(many.values())), ",.0f") + " req/s"
            row[_name(python)] = f"{rate}; {_verdict(stats.compare(many, one))}"
        if seen:
            rows.append(row)
    return pd.DataFrame(rows)


def _per_build(df: pd.DataFrame, heading: str, values_of, fmt: str, unit: str) -> pd.DataFrame:
    """One row per engine, one column per build of ``df``: median [interval] of ``values_of(engine,
    python)`` in ``unit``, and each build's median over the first build's that has one (not paired:
    the builds ran one after the other). Empty when no build is free-threaded."""
    labels = builds(df)
    if not labels:
        return pd.DataFrame()
    rows = []
    for engine in ("threadpool", "processpool", "selectors", "asyncio"):
        row = {heading: engine}
        ref = None
        for python in labels:
            values = values_of(engine, python)
            ci = stats.median_ci(values) if values else None
            if ci is None:
                row[_name(python)] = "–"
                continue
            ratio = f" ({ci.median / ref:.2f}x)" if ref else ""
            ref = ref if ref is not None else ci.median
            row[_name(python)] = RD.fmt_interval(ci, fmt) + unit + ratio
        rows.append(row)
    return pd.DataFrame(rows)


def tax_table(df: pd.DataFrame) -> pd.DataFrame:
    """The single-thread tax: /cpu on one core per engine and build (median [interval] req/s), and
    each build's median over the first build's (not paired: the builds ran one after the other)."""
    return _per_build(df, "engine (one core, /cpu)",
                      lambda engine, python: list(_values(df, engine, "cpu", python, True).values()),
                      ",.0f", " req/s")


def cost_tax_table(df: pd.DataFrame) -> pd.DataFrame:
    """The tax per request of the machinery: each engine's server CPU per request (µs, h1
    /plaintext, one core, the cost experiment's rows) per build, median [interval] over the rounds,
    and each build's median over the first build's (not paired: the builds ran one after the other).
    Empty when no build of ``df`` is free-threaded."""
    if "server_cpu_us_per_req" not in df:
        return pd.DataFrame()

    def values_of(engine: str, python: str) -> list[float]:
        sub = df[(df["engine"] == engine) & (df["workload"] == "plaintext") & (df["protocol"] == "h1")
                 & (df["python"] == python)]
        return [v for v in pd.to_numeric(sub["server_cpu_us_per_req"], errors="coerce") if v == v]

    return _per_build(df, "engine (one core, h1 /plaintext)", values_of, ",.1f", " µs")


def freethreading_findings(df: pd.DataFrame) -> list[str]:
    """Sentences from :func:`scaling_table`'s cells: per build, which configurations scale on the
    two cores and which are a tie with one copy."""
    out = []
    for python in builds(df):
        scales, ties = [], []
        for label, engine, workload, base, base_one_core in CONFIGURATIONS:
            many = _values(df, engine, workload, python, False if engine == base else None)
            one = _values(df, base, workload, python, True if base_one_core else None)
            c = stats.compare(many, one)
            if c.verdict == "A":
                scales.append(f"{label} {c.ratio.median:.2f}x")
            elif c.verdict in ("tie", "B"):
                ties.append(f"{label} {c.ratio.median:.2f}x")
        if scales or ties:
            out.append(f"{_name(python)}: scale on both cores: {', '.join(scales) or 'none'}; "
                       f"no faster than one copy: {', '.join(ties) or 'none'}.")
    return out


def freethreading_sections(directory: str) -> list[Section]:
    """"What does free-threading change?", from the cores rows of every Python, when one of them
    is a free-threaded build; none otherwise."""
    every = load_rounds(directory, every_python=True)
    df = every.get("cores")
    if df is None or not builds(df):
        return []
    df = RD.split_control(df)[0]
    command = _command(directory)
    intro = (f"/cpu (pure-Python work) on both cores under each build (`{command}`): a GIL build "
             "(Debian's, which Debian builds with PGO and LTO; its CONFIG_ARGS do not say so), a free-threaded build (3.14t, PEP 703; built here without PGO) and the "
             "same 3.14t binary with PYTHON_GIL=1, which isolates what the GIL does to scheduling from what "
             "the build does to speed. Each cell: median [95 % interval] req/s over the rounds; then the paired "
             "ratio to the same configuration's one copy (one thread, one worker), with its interval and "
             "verdict (a tie where the interval reaches into 1 +- 3 %). /cpu?shared=1 is the variant whose "
             "constant every thread shares (docs/experiments.md).")
    return [Section("freethreading", "What does free-threading change?", intro, [], scaling_table(df),
                    freethreading_findings(df)),
            Section("freethreading-tax", "The single-thread tax of free-threading",
                    "/cpu on one core, one copy, per build: what a request's Python costs each build before any "
                    "parallelism (the ratio: each build's median over the first's that has one; not paired, the builds ran one "
                    "after the other).", [], tax_table(df), [])] + _cost_tax(every.get("cost"))


def _cost_tax(cost: pd.DataFrame | None) -> list[Section]:
    """The cost experiment's tax section, where its rows include a free-threaded build."""
    table = cost_tax_table(RD.split_control(cost)[0]) if cost is not None else pd.DataFrame()
    if table.empty:
        return []
    return [Section("freethreading-cost", "The single-thread tax per request (cost, µs)",
                    "The machinery's CPU per request on one core (server user + system CPU over the requests "
                    "counted; h1 /plaintext from wrk -c64) per build: what the protocol, the engine and the app "
                    "cost in each build (lower is better; the ratio: each build's median over the first's, not "
                    "paired, the builds ran one after the other).", [], table, [])]


def _command(directory: str) -> str:
    """The cores command(s) of the run's manifest.json (the pieces, in order), else COMMAND."""
    commands = list(dict.fromkeys(p["command"] for p in manifest(directory)
                                  if p.get("experiment") == "cores" and p.get("command")))
    return "`; `".join(commands) if commands else COMMAND
