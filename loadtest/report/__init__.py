"""``python -m loadtest report``: charts, results/REPORT.md and www/results.html from the experiments'
CSVs (results/experiments/) and the sweep's results/summary.csv.

Usage::

    python -m loadtest report [--experiments results/experiments] [--summary results/summary.csv]
                              [--out results/charts] [--report results/REPORT.md] [--www www | --no-www]

The report leads with the experiments (``loadtest/report/verdict.py``): the verdict table, a row per
question and a column per engine, then a section per experiment with its chart, command, findings
and table. The sweep's sections follow, titled "Sweep: ..." and labelled with their revision.

Reads the rows ``python -m loadtest sweep`` appended (``loadtest/report/results.py`` folds repeats into medians
with min-max) and writes, for each comparison, a chart as PNG and SVG under ``--out``
(``loadtest/report/charts.py``), the table behind it, and a few sentences of findings computed from the
numbers (``findings_*``; a finding states what the rows support and says when they do not settle it:
overlapping min-max ranges, single runs, a saturated generator):

==============  =====================================================================================
throughput      peak median requests/s by engine, for each workload and protocol
latency_<p>     p50 / p90 / p99 / p99.9 by engine, at one user count shared by the engines
scaling_<p>     throughput and p99 against users, one line per engine
protocols       HTTP/1.1 against HTTP/2 for each engine (when more than one protocol was measured)
efficiency      requests per server CPU-second (rps / (server_cpu_pct / 100)) and peak RSS
littles_law     (table only) the io workload against X = min(N, W) / wait
==============  =====================================================================================

``REPORT.md`` embeds the PNGs; ``<www>/results.html`` is the same report as a page of the lab's site
(``www/static/style.css``), with the SVGs copied to ``<www>/static/charts/``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys

import pandas as pd

from loadtest.report import results as R
from loadtest.report.document import Section, md_table

__all__ = ["Section", "build_sections", "findings_throughput", "findings_latency", "findings_scaling",
           "findings_protocols", "findings_efficiency", "findings_littles_law", "to_markdown", "to_html",
           "md_table", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART_PREFIXES = ("throughput", "latency_", "scaling_", "protocols", "efficiency", "exp_")


# -- formatting ------------------------------------------------------------------------------------------

def _num(x) -> str:
    if x is None or pd.isna(x):
        return "–"
    x = float(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _spread(row, metric: str) -> str:
    """``median (min–max)`` when there were several repeats that differ, else the median."""
    med = _num(row[metric])
    lo, hi = row.get(f"{metric}_min"), row.get(f"{metric}_max")
    if row.get("runs", 1) > 1 and pd.notna(lo) and pd.notna(hi) and lo != hi:
        return f"{med} ({_num(lo)}–{_num(hi)})"
    return med


def _sat(row) -> str:
    return f"yes ({int(row['saturated_runs'])}/{int(row['runs'])})" if row["saturated"] else ""


def _table(rows: pd.DataFrame, metrics: list[tuple[str, str]], keys=("engine", "protocol", "workload", "users")):
    out = []
    for _, r in rows.iterrows():
        d = {k: str(r[k]) for k in keys}
        if "streams" in r and r["protocol"] != "h1" and int(r["streams"]) != 1:
            d["users"] = f"{r['users']} x {r['streams']} streams"
        d.update({label: _spread(r, m) for m, label in metrics})
        d["runs"] = str(int(r["runs"]))
        d["generator saturated"] = _sat(r)
        out.append(d)
    return pd.DataFrame(out)


def _ratio(a: float, b: float) -> str:
    """``a / b`` as "2.5x", or "about the same as" within 10%."""
    return "about the same as" if b and a < 1.1 * b else f"{a / b:.1f}x"


def _of(name: str) -> str:
    """The possessive: "asyncio's", "selectors'"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _who(r) -> str:
    return f"{r['engine']} ({_num(r['rps'])} req/s)"


def _caveat(r) -> str:
    return " (generator saturated: a floor)" if r["saturated"] else ""


# -- findings: sentences the numbers support ---------------------------------------------------------------

def findings_throughput(peak: pd.DataFrame) -> list[str]:
    """Per protocol and workload: the engine with the highest peak median throughput and by what ratio
    it leads the next and the slowest, with the caveats that make the lead uncertain."""
    out = []
    for (proto, wl), sub in peak.groupby(["protocol", "workload"], sort=False):
        sub = sub.sort_values("rps", ascending=False)
        if len(sub) < 2 or sub["rps"].isna().all():
            continue
        first, second, last = sub.iloc[0], sub.iloc[1], sub.iloc[-1]
        s = (f"{wl}, {proto}: {first['engine']} leads with {_num(first['rps'])} req/s at {first['users']} users"
             f"{_caveat(first)}, {first['rps'] / second['rps']:.2f}x {_who(second)}")
        if len(sub) > 2:
            s += f" and {first['rps'] / last['rps']:.1f}x the slowest, {_who(last)}"
        s += "."
        if first["rps"] < 1.05 * second["rps"]:
            s += " Within 5% of each other: a tie for practical purposes."
        if first["rps_min"] <= second["rps_max"] and (first["runs"] > 1 or second["runs"] > 1):
            s += (f" The min–max ranges of {first['engine']} and {second['engine']} overlap over the repeats, so "
                  "their order is not settled.")
        elif first["runs"] == 1:
            s += " Single runs: repeat them before trusting the order."
        if first["saturated"]:
            s += " The leader's generator was saturated, so the server could be faster still; compare with wrk/h2load."
        lab = sub[~sub["engine"].isin(R.PEERS)]
        if first["engine"] in R.PEERS and not lab.empty:
            s += f" Best of the lab's engines: {_who(lab.iloc[0])}."
        out.append(s)
    return out


def findings_latency(common: pd.DataFrame) -> list[str]:
    """Per workload (one protocol): lowest and highest p99, their ratio, and the widest tail (p99 / p50)."""
    out = []
    for wl, sub in common.groupby("workload", sort=False):
        sub = sub.dropna(subset=["p99_ms"]).sort_values("p99_ms")
        if len(sub) < 2:
            continue
        best, worst = sub.iloc[0], sub.iloc[-1]
        users = "/".join(str(u) for u in sorted(set(sub["users"])))
        s = (f"{wl} at {users} users: the lowest p99 is {_of(best['engine'])}, {_num(best['p99_ms'])} ms"
             f"{_caveat(best)}; the highest {_of(worst['engine'])}, {_num(worst['p99_ms'])} ms"
             f"{_caveat(worst)} ({worst['p99_ms'] / best['p99_ms']:.1f}x).")
        tail = (sub["p99_ms"] / sub["p50_ms"]).dropna()
        if not tail.empty:
            r = sub.loc[tail.idxmax()]
            s += (f" The longest tail relative to the median is {_of(r['engine'])}: p99 = {tail.max():.1f}x p50 "
                  f"({_num(r['p50_ms'])} -> {_num(r['p99_ms'])} ms).")
        out.append(s)
    return out


def findings_scaling(table: pd.DataFrame) -> list[str]:
    """Per workload (one protocol): how much each engine's throughput and p99 grew from the fewest to the
    most users, against the growth in users (a flat throughput means that engine was at capacity)."""
    out = []
    for wl, sub in table.groupby("workload", sort=False):
        users = sorted(set(sub["users"]))
        if len(users) < 2:
            continue
        parts, flat, linear, sub_linear, gen_bound = [], [], [], [], []
        for engine in R.engines_in(sub):
            line = sub[sub["engine"] == engine].sort_values("users")
            if len(line) < 2:
                continue
            a, b = line.iloc[0], line.iloc[-1]
            grow = b["rps"] / a["rps"] if a["rps"] else float("nan")
            ufac = b["users"] / a["users"]
            parts.append(f"{engine} {grow:.1f}x (p99 {_num(a['p99_ms'])} -> {_num(b['p99_ms'])} ms)"
                         + (", saturated generator" if line["saturated"].any() else ""))
            if grow < 1.2 and line["saturated"].any():
                gen_bound.append(engine)
            elif grow < 1.2:
                flat.append(engine)
            elif grow >= 0.8 * ufac:
                linear.append(engine)
            else:
                sub_linear.append(engine)
        if not parts:
            continue
        s = (f"{wl}, {users[0]} -> {users[-1]} users ({users[-1] / users[0]:.0f}x): throughput grew "
             + "; ".join(parts) + ".")
        if linear:
            s += (f" Near-proportional growth ({', '.join(linear)}): more users, more requests in flight, "
                  "not yet a limit.")
        if sub_linear:
            s += (f" Less than proportional ({', '.join(sub_linear)}): a limit (CPU, workers, the generator) is "
                  "reached inside this range; past it, extra users add queueing (p99) rather than throughput.")
        if flat:
            s += (f" Flat ({', '.join(flat)}): at capacity over this range; extra users only queue, "
                  "which shows as a higher p99.")
        if gen_bound:
            s += (f" Flat with a saturated generator ({', '.join(gen_bound)}): the generator may be the limit, "
                  "not the server.")
        out.append(s)
    return out


def _where(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r.protocol} {r.users} users" for r in rows.itertuples())


def findings_littles_law(ll: pd.DataFrame, workers_note: dict[str, str], wait: float) -> list[str]:
    """The io workload against X = min(N, W) / wait: per engine, the range of measured / predicted, and
    each configuration that breaks the law (above the bound: the harness is wrong; far below it: the
    server is short of CPU or something else queues)."""
    out = []
    for engine in R.engines_in(ll) if not ll.empty else []:
        sub = ll[ll["engine"] == engine].dropna(subset=["ratio"])
        if sub.empty:
            out.append(f"{engine}: its worker count is {workers_note.get(engine, 'unknown')}, so no prediction.")
            continue
        w = sub["workers"].iloc[0]
        bound = (f"min(N, W = {int(w)}) / {wait:g} s (W: {workers_note.get(engine, '')})" if pd.notna(w) and w
                 else f"N / {wait:g} s (no worker bound)")
        lo, hi = sub["ratio"].min(), sub["ratio"].max()
        s = (f"{engine}: measured io throughput is {lo:.0%}–{hi:.0%} of Little's law's {bound} over "
             f"{len(sub)} configuration(s).")
        capped = sub[sub["workers"].notna() & (sub["in_flight"] > sub["workers"])]
        if not capped.empty:
            r = capped.sort_values("in_flight").iloc[-1]
            s += (f" With {r['in_flight']} requests in flight and {int(r['workers'])} workers it serves "
                  f"{_num(r['rps'])} req/s, where the law allows {_num(r['predicted_rps'])}"
                  + (": waiting requests hold workers, so the pool, not the CPU, is the limit."
                     if r["ratio"] >= 0.8 else ", well short of the bound."))
        high = sub[sub["ratio"] > 1.05]
        low = sub[(sub["ratio"] < 0.8) & ~sub["saturated"]]
        if not high.empty:
            s += (f" Above the bound at {_where(high)}: a figure Little's law "
                  "forbids, so check the harness or the worker count.")
        if not low.empty:
            s += (f" Below 80% at {_where(low)}: something other than the wait "
                  "queues there (CPU, the generator, connection setup).")
        out.append(s)
    return out


def findings_protocols(peak: pd.DataFrame) -> list[str]:
    """Per engine: peak throughput of each HTTP/2 flavour over HTTP/1.1, workload by workload."""
    out = []
    for engine in R.engines_in(peak):
        sub = peak[peak["engine"] == engine]
        ratios = []
        for wl, w in sub.groupby("workload", sort=False):
            h1 = w[w["protocol"] == "h1"]
            for proto in ("h2c", "h2"):
                h2 = w[w["protocol"] == proto]
                if h1.empty or h2.empty or not h1.iloc[0]["rps"]:
                    continue
                a, b = h1.iloc[0], h2.iloc[0]
                flag = "*" if a["saturated"] or b["saturated"] else ""
                ratios.append(f"{wl} {proto}/h1 = {b['rps'] / a['rps']:.2f}x{flag}")
        if ratios:
            out.append(f"{engine}: " + ", ".join(ratios) + ".")
    if any("*" in s for s in out):
        out.append("* one of the two had a saturated generator: the ratio is not the servers' alone.")
    if out and "processpool" in set(peak["engine"]):
        out.append("processpool serves one connection's HTTP/2 streams in order (the worker that owns it is "
                   "single-threaded), so its HTTP/2 concurrency comes from connections, not streams.")
    return out


def findings_efficiency(top: pd.DataFrame) -> list[str]:
    """Per protocol and workload: the most and least requests per server CPU-second, and the RSS range."""
    out = []
    for (proto, wl), sub in top.groupby(["protocol", "workload"], sort=False):
        eff = sub.dropna(subset=["req_per_cpu_s"]).sort_values("req_per_cpu_s", ascending=False)
        if len(eff) >= 2:
            a, b = eff.iloc[0], eff.iloc[-1]
            out.append(f"{wl}, {proto}: {a['engine']} serves the most requests per server CPU-second, "
                       f"{_num(a['req_per_cpu_s'])}, {_ratio(a['req_per_cpu_s'], b['req_per_cpu_s'])} {b['engine']} "
                       f"({_num(b['req_per_cpu_s'])}){_caveat(a)}.")
        mem = sub.dropna(subset=["server_rss_mb"]).sort_values("server_rss_mb")
        if len(mem) >= 2:
            a, b = mem.iloc[0], mem.iloc[-1]
            out.append(f"{wl}, {proto}: peak RSS from {_num(a['server_rss_mb'])} MiB ({a['engine']}) to "
                       f"{_num(b['server_rss_mb'])} MiB ({b['engine']}).")
    if "processpool" in set(top["engine"]):
        out.append("processpool's RSS is the sum over its processes (shared pages counted once per process), "
                   "and its CPU the sum over them.")
    return out


# -- sections --------------------------------------------------------------------------------------------

def build_sections(df: pd.DataFrame, out_dir: str, runs_dir: str | None) -> list[Section]:
    """Draw every chart into ``out_dir`` (PNG + SVG) and return the report's sections in order."""
    from loadtest.report import charts as C

    agg = R.aggregate(df)
    peak, top = R.peak(agg), R.highest_users(agg)
    protocols = [p for p in R.PROTOCOL_ORDER if p in set(agg["protocol"])] + \
        [p for p in dict.fromkeys(agg["protocol"]) if p not in R.PROTOCOL_ORDER]
    sections: list[Section] = []

    def draw(fig, name: str) -> str:
        C.save(fig, out_dir, name)
        return name

    sections.append(Section(
        "throughput", "Throughput by engine",
        "Peak median requests/s over the user counts measured, for each workload and protocol (the table "
        "gives the user count of the peak); bars span the repeats' min–max.",
        [draw(C.throughput_chart(peak, "Throughput by engine (peak over users)"), "throughput")],
        _table(peak, [("rps", "req/s"), ("p99_ms", "p99 ms")]), findings_throughput(peak)))

    common = R.common_users(agg)
    lat_charts, lat_find = [], []
    for proto in protocols:
        sub = common[common["protocol"] == proto]
        lat_charts.append(draw(C.latency_chart(sub, proto), f"latency_{proto}"))
        lat_find += [f"{proto}: {s}" for s in findings_latency(sub)]
    sections.append(Section(
        "latency", "Latency percentiles by engine",
        "p50, p90, p99 and p99.9 (ms, log scale) at the highest user count every engine measured.",
        lat_charts, _table(common, [(m, f"{n} ms") for m, n in C.PERCENTILES]), lat_find))

    scale_charts, scale_find = [], []
    for proto in protocols:
        sub = agg[agg["protocol"] == proto]
        scale_charts.append(draw(C.scaling_chart(sub, proto), f"scaling_{proto}"))
        scale_find += [f"{proto}: {s}" for s in findings_scaling(sub)]
    sections.append(Section(
        "scaling", "Scaling with users",
        "Throughput and p99 against the number of users (closed loop: each user sends its next request when "
        "the last one is answered), one line per engine; hollow points had a saturated generator.",
        scale_charts, _table(agg, [("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms")]), scale_find))

    if "io" in set(agg["workload"]):
        ll = R.littles_law(agg, df, runs_dir)
        notes = {e: R.workers_for(e, df, runs_dir)[1] for e in set(ll["engine"])}
        wait = R.io_wait_s()
        t = ll.copy()
        t["workers"] = t["workers"].map(lambda w: "–" if pd.isna(w) or not w else str(int(w)))
        for c in ("predicted_rps", "rps"):
            t[c] = t[c].map(_num)
        t["ratio"] = t["ratio"].map(lambda v: "–" if pd.isna(v) else f"{v:.0%}")
        t["saturated"] = t["saturated"].map(lambda v: "yes" if v else "")
        t = t.rename(columns={"in_flight": "in flight (N)", "workers": "workers (W)",
                              "predicted_rps": "min(N, W) / wait", "rps": "measured req/s",
                              "ratio": "measured / predicted", "saturated": "generator saturated"})
        sections.append(Section(
            "littles-law", "Little's law on the io workload",
            f"The io handler waits {wait * 1000:g} ms. With N requests in flight (users x streams) and an engine "
            f"that holds one of W workers per waiting request, throughput can be at most min(N, W) / "
            f"{wait:g} s; an event loop has no W.", [], t, findings_littles_law(ll, notes, wait)))

    if len(protocols) > 1:
        sections.append(Section(
            "protocols", "HTTP/1.1 against HTTP/2",
            "Peak median requests/s of each engine per protocol (h2c: HTTP/2 with prior knowledge; h2: over TLS).",
            [draw(C.protocol_chart(peak), "protocols")],
            _table(peak, [("rps", "req/s")]), findings_protocols(peak)))

    sections.append(Section(
        "efficiency", "CPU efficiency and memory",
        "Requests per server CPU-second (req/s divided by the server's CPU share, in cores) and the server's "
        "peak RSS, at the highest user count measured.",
        [draw(C.efficiency_chart(top), "efficiency")],
        _table(top, [("req_per_cpu_s", "req per CPU-s"), ("server_cpu_pct", "server CPU %"),
                     ("server_rss_mb", "RSS MiB")]), findings_efficiency(top)))
    return sections


def _saturation_lines(df: pd.DataFrame) -> list[str]:
    """One sentence: how many runs had a saturated generator, counted by protocol and workload (the
    charts flag each one; the prose does not list them)."""
    sat = df[df["generator_saturated"]]
    if sat.empty:
        return [f"No run had a saturated load generator ({len(df)} runs)."]
    groups = sat.groupby(["protocol", "workload"], sort=False).size()
    names = ", ".join(f"{p} {w}: {n}" for (p, w), n in groups.items())
    return [f"{len(sat)} of {len(df)} runs had a saturated load generator ({names}); the charts draw them "
            "hatched or hollow: their figures measure the generator as much as the server."]


def _machine_lines(info: dict) -> list[str]:
    revs = info["git_rev"] or ["unknown"]
    lines = [f"Machine: {', '.join(info['cpu']) or 'unknown CPU'}"
             + (f", {info['cores']} cores" if info["cores"] else "")
             + (f", Linux {info['kernel']}" if info["kernel"] else ""),
             f"Python: {', '.join(info['python']) or 'unknown'}",
             f"Revision: {', '.join(revs)}" + (" (several revisions: rows from different code)" if len(revs) > 1
                                               else ""),
             f"Runs: {info['runs']}" + (f", {info['first']} to {info['last']}" if info["first"] else "")]
    lines += [f"Sweep: {c}" for c in info.get("commands") or []]
    if any(r.endswith("-dirty") for r in revs):
        lines.append("Some runs were made with uncommitted changes (-dirty).")
    return lines


# -- rendering -------------------------------------------------------------------------------------------

def to_markdown(sections: list[Section], info: dict, sat_lines: list[str], chart_rel: str, source: str,
                image: str = "png") -> str:
    """REPORT.md: machine and revision, saturation, then each section's charts, findings and table
    (GitHub-flavoured markdown). The one source of the report: :func:`to_html` renders this same
    text. ``image``: the charts' format shown inline (``png``; the page shows ``svg``), the other
    one linked."""
    other = "svg" if image == "png" else "png"
    parts = ["# Concurrency lab: results", "",
             f"Generated by `python -m loadtest report` from `{source}`; regenerate it rather than editing it. "
             "Units: requests/s, milliseconds, MiB. How many runs stand behind a figure, and its interval, "
             "is said where it is shown (the experiments: \"How far these figures can be trusted\").", ""]
    parts += [f"- {line}" for line in _machine_lines(info)] + [""] + sat_lines + [""]
    parts += ["Contents: " + ", ".join(f"[{s.title}](#{s.key})" for s in sections), ""]
    for s in sections:
        parts += [f'<a id="{s.key}"></a>', "", f"## {s.title}", "", s.intro, ""]
        for name in s.charts:
            parts += [f"![{s.title}: {name}]({chart_rel}/{name}.{image})",
                      f"([{other.upper()}]({chart_rel}/{name}.{other}))", ""]
        if s.findings:
            parts += ["### Findings", ""] + [f"- {f}" for f in s.findings] + [""]
        if s.table is not None and not s.table.empty:
            parts += ["### Table", "", md_table(s.table), ""]
    return "\n".join(parts)


#: the page around the rendered report (www/results.html): the site's header, style and footer
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Results · Concurrency lab</title>
  <link rel="stylesheet" href="/static/style.css">
  <link rel="icon" href="/static/logo.svg" type="image/svg+xml">
</head>
<body>
<header>
  <img src="/static/logo.svg" alt="">
  <div>
    <h1>Results</h1>
    <p>The four engines and the peers, measured.</p>
  </div>
  <nav>
    <a href="/">Home</a>
    <a href="/models.html">Models</a>
  </nav>
</header>
<main class="wide">
{body}
</main>
<footer>
  Concurrency lab. <a href="/">Back to the start</a>.
</footer>
</body>
</html>
"""


def to_html(sections: list[Section], info: dict, sat_lines: list[str], chart_url: str,
            source: str = "results/summary.csv") -> str:
    """www/results.html: the report's markdown (:func:`to_markdown`, SVG charts from
    ``chart_url``) rendered by markdown-it-py (CommonMark with GitHub's tables) into the site's page."""
    from markdown_it import MarkdownIt

    text = to_markdown(sections, info, sat_lines, chart_url, source, image="svg")
    text = text.split("\n", 1)[1]  # the page has its own title
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    body = body.replace("<table>", '<div class="table-wrap"><table>').replace("</table>", "</table></div>")
    return PAGE.format(body=body)


def _write_readme(path: str, block: str) -> None:
    """Replace what stands between the markers in ``path`` with ``block``.

    Raises:
        ValueError: the file lacks the markers.
    """
    start, end = "<!-- verdict:start -->", "<!-- verdict:end -->"
    with open(path) as f:
        text = f.read()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{start}\n{block}\n{end}{tail}")


def _experiment_machine(directory: str) -> dict:
    """The machine lines' fields from the experiments' rows (when there is no sweep)."""
    from loadtest.report import verdict

    frames = verdict.load_rounds(directory, every_python=True)  # every row, every Python, every round
    col = lambda c: sorted({str(v) for df in frames.values() if c in df for v in df[c].dropna().unique()})  # noqa: E731
    runs = sum(len(df) for df in frames.values())
    dates = col("date")
    return {"cpu": col("cpu"), "cores": os.cpu_count(), "kernel": "", "python": col("python"),
            "git_rev": col("git_rev"), "runs": runs, "first": dates[0] if dates else "",
            "last": dates[-1] if dates else "", "commands": []}


def _clear_charts(directory: str, exts: tuple[str, ...]) -> None:
    """Remove charts this command wrote before (by name prefix), so that none outlives its data."""
    for ext in exts:
        for path in glob.glob(os.path.join(directory, f"*.{ext}")):
            if os.path.basename(path).startswith(CHART_PREFIXES):
                os.remove(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest report", description=(
        "Charts (PNG + SVG), results/REPORT.md and www/results.html from the sweep's results/summary.csv."))
    p.add_argument("--summary", default=os.path.join(ROOT, "results", "summary.csv"),
                   help="the sweep's summary (default: results/summary.csv)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "charts"),
                   help="charts directory (default: results/charts)")
    p.add_argument("--report", default=None, help="markdown report (default: REPORT.md beside --out)")
    p.add_argument("--experiments", default=os.path.join(ROOT, "results", "experiments"),
                   help="the experiments' CSVs; the report leads with their verdict (default: results/experiments)")
    p.add_argument("--runs", default=None, help="run directories with meta.json (default: runs/ beside --summary)")
    p.add_argument("--www", default=os.path.join(ROOT, "www"),
                   help="site root: writes results.html and static/charts/*.svg (default: www/)")
    p.add_argument("--no-www", action="store_true", help="do not write the web page")
    p.add_argument("--readme", default=None, metavar="FILE",
                   help="also write the verdict between FILE's <!-- verdict:start --> / <!-- verdict:end --> markers")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m loadtest report``: 0 when written, 1 when there is nothing to report."""
    import matplotlib

    matplotlib.use("Agg")
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    from loadtest.report import verdict

    has_experiments = bool(verdict.load(args.experiments)) if os.path.isdir(args.experiments) else False
    try:
        df = R.load_summary(args.summary)
    except (OSError, ValueError) as exc:
        if not has_experiments:
            print(f"python -m loadtest report: {exc}\n(run python -m loadtest sweep or experiment first)",
                  file=sys.stderr)
            return 1
        df = None
    if (df is None or df.empty) and not has_experiments:
        print(f"python -m loadtest report: {args.summary} has no rows", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    _clear_charts(args.out, ("png", "svg"))
    lead = verdict.experiment_sections(args.experiments, args.out) if has_experiments else []
    runs_dir = args.runs or os.path.join(os.path.dirname(os.path.abspath(args.summary)), "runs")
    report = args.report or os.path.join(os.path.dirname(os.path.abspath(args.out)), "REPORT.md")
    sections = list(lead)
    if df is not None and not df.empty:
        sweep = build_sections(df, args.out, runs_dir)
        info = R.machine(df, runs_dir)
        sat = _saturation_lines(df)
        if lead:  # the closed-loop sweep rows follow, labelled with the code they came from
            exp_revs = sorted({str(r) for df_ in verdict.load(args.experiments).values() for r in df_["git_rev"].unique()})
            sat = [f"The machine, revision and run lines above describe the earlier closed-loop sweep ("
                   f"{os.path.basename(args.summary)}, the sections titled 'Sweep:'); the verdict and the experiments "
                   f"come from {os.path.relpath(os.path.abspath(args.experiments), ROOT)}/ (git "
                   f"{', '.join(exp_revs)})."] + sat
            for s in sweep:
                s.title = f"Sweep: {s.title}"
                s.intro = (f"From the closed-loop locust sweep in {os.path.basename(args.summary)} "
                           f"(git {', '.join(info['git_rev'] or ['unknown'])}), not the experiments. " + s.intro)
        sections += sweep
    else:
        info = _experiment_machine(args.experiments)
        sat = []
    rel = os.path.relpath(os.path.abspath(args.out), os.path.dirname(report)).replace(os.sep, "/")
    source = os.path.relpath(os.path.abspath(args.summary), ROOT).replace(os.sep, "/")
    if lead:
        exp_source = f"{os.path.relpath(os.path.abspath(args.experiments), ROOT)}/*.csv"
        source = exp_source if df is None or df.empty else f"{exp_source}` and `{source}"
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as f:
        f.write(to_markdown(sections, info, sat, rel, source))
    written = [report]
    if not args.no_www:
        charts = os.path.join(args.www, "static", "charts")
        os.makedirs(charts, exist_ok=True)
        _clear_charts(charts, ("svg",))
        for s in sections:
            for name in s.charts:
                shutil.copyfile(os.path.join(args.out, f"{name}.svg"), os.path.join(charts, f"{name}.svg"))
        page = os.path.join(args.www, "results.html")
        with open(page, "w") as f:
            f.write(to_html(sections, info, sat, "/static/charts", source.replace("`", "")))
        written.append(page)
    if args.readme and lead:
        _write_readme(args.readme, verdict.readme_block(
            args.experiments, args.out, os.path.relpath(os.path.abspath(args.out), os.path.dirname(os.path.abspath(args.readme)))))
        written.append(args.readme)
    n = sum(len(s.charts) for s in sections)
    print(f"{0 if df is None else len(df)} sweep runs, {len(lead)} experiment sections -> {n} charts (PNG + SVG) in {args.out}; " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
