"""The comparison charts, drawn with matplotlib from ``loadtest/report/results.py``'s aggregated rows.

Every chart is a ``matplotlib.figure.Figure`` built without pyplot (no global state, no display; the
caller selects the Agg backend) and saved as PNG and SVG by ``save``. Conventions shared by all charts:

- one colour per engine (``ENGINE_COLORS``), the peers (uvicorn, hypercorn) drawn dashed or with a dotted
  edge, so that the lab's engines read first;
- a bar or point is the median of the repeated runs; the black error bar spans their min-max;
- a configuration whose load generator was saturated (``saturated``: any repeat with
  ``generator_saturated``) is never drawn as a clean figure: hatched, pale bars and hollow markers, and a
  legend entry that says "generator saturated: a floor, not the server's figure".

Functions take the aggregated DataFrame (``results.aggregate``) and return the figure; which
configuration a chart shows (peak over users, a common user count) is chosen by the caller (report.py),
which also writes the table behind each chart.
"""

from __future__ import annotations

import math
import os

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from loadtest.report.results import PEERS, PROTOCOL_ORDER, WORKLOAD_ORDER, engines_in

__all__ = ["ENGINE_COLORS", "SATURATED_NOTE", "save", "throughput_chart", "latency_chart", "scaling_chart",
           "protocol_chart", "efficiency_chart"]

ENGINE_COLORS = {"threadpool": "#1f77b4", "processpool": "#ff7f0e", "selectors": "#2ca02c", "asyncio": "#d62728",
                 "uvicorn": "#7f7f7f", "hypercorn": "#9467bd"}
PROTOCOL_COLORS = {"h1": "#4c72b0", "h2c": "#dd8452", "h2": "#55a868"}
PERCENTILES = [("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]
PERCENTILE_COLORS = ["#c6dbef", "#6baed6", "#2171b5", "#08306b"]
SATURATED_NOTE = "hatched / hollow: generator saturated (a floor, not the server's figure)"
_FALLBACK = ["#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def _color(engine: str) -> str:
    return ENGINE_COLORS.get(engine) or _FALLBACK[sum(map(ord, engine)) % len(_FALLBACK)]


def _present(values, order) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def save(fig: Figure, out_dir: str, name: str) -> list[str]:
    """Write ``fig`` as ``<out_dir>/<name>.png`` (150 dpi) and ``.svg``; returns the two paths.

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        # SVG text stays text (selectable, searchable, smaller); no date, so reruns diff cleanly.
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lab"}):
            fig.savefig(path, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    return paths


def _grid(n: int, ncols: int, w: float = 4.2, h: float = 3.2, sharey: bool = False):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(w * ncols, h * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _plain_log(ax) -> None:
    """Label a log y axis 20, 50, 100 rather than 2 x 10^1."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "235" else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def _bar(ax, x: float, width: float, row, metric: str, color: str, peer: bool = False) -> None:
    """One median bar with its min-max error bar; hatched and pale when the configuration is saturated."""
    value = row[metric]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    sat = bool(row["saturated"])
    ax.bar(x, value, width, color=color, alpha=0.35 if sat else 1.0, hatch="///" if sat else None,
           edgecolor="black" if sat else color, linewidth=0.8, linestyle=":" if peer else "-")
    lo, hi = row.get(f"{metric}_min", value), row.get(f"{metric}_max", value)
    if pd.notna(lo) and pd.notna(hi) and (hi > value or lo < value):
        ax.errorbar(x, value, yerr=[[max(0.0, value - lo)], [max(0.0, hi - value)]], fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)


def _legend(fig: Figure, handles: list, saturated: bool) -> None:
    if saturated:
        handles = handles + [Patch(facecolor="white", edgecolor="black", hatch="///", label=SATURATED_NOTE)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8, frameon=False)


def _engine_handles(engines: list[str]) -> list:
    return [Patch(facecolor=_color(e), edgecolor=_color(e), linestyle=":" if e in PEERS else "-", label=e)
            for e in engines]


def _grouped(ax, table: pd.DataFrame, x: str, xs: list, hue: str, hues: list, metric: str, colors) -> None:
    width = 0.8 / max(1, len(hues))
    for i, xv in enumerate(xs):
        for j, hv in enumerate(hues):
            sel = table[(table[x] == xv) & (table[hue] == hv)]
            if not sel.empty:
                engine = xv if x == "engine" else hv if hue == "engine" else ""
                _bar(ax, i - 0.4 + width * (j + 0.5), width, sel.iloc[0], metric, colors(hv),
                     peer=engine in PEERS)
    ax.set_xticks(range(len(xs)), xs, rotation=30 if x == "engine" else 0, ha="right" if x == "engine" else "center",
                  fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def throughput_chart(table: pd.DataFrame, title: str = "Throughput by engine") -> Figure:
    """Bars of median requests/s: one panel per protocol, workloads along x, one bar per engine.

    ``table``: aggregated rows, one per (engine, protocol, workload) (e.g. ``results.peak``).
    """
    protocols = _present(table["protocol"], PROTOCOL_ORDER)
    engines = engines_in(table)
    fig, axes = _grid(len(protocols), 1, w=max(7.0, 1.6 * table["workload"].nunique() + 3), h=3.3)
    for ax, proto in zip(axes, protocols):
        sub = table[table["protocol"] == proto]
        workloads = _present(sub["workload"], WORKLOAD_ORDER)
        _grouped(ax, sub, "workload", workloads, "engine", engines, "rps", _color)
        ax.set_title(f"{proto}", fontsize=10)
        ax.set_ylabel("requests/s (median)")
    fig.suptitle(title, fontsize=11)
    _legend(fig, _engine_handles(engines), bool(table["saturated"].any()))
    return fig


def latency_chart(table: pd.DataFrame, protocol: str) -> Figure:
    """Latency percentiles (p50, p90, p99, p99.9; ms, log scale) by engine, one panel per workload.

    ``table``: aggregated rows of one protocol, one per (engine, workload) (``results.common_users``).
    """
    workloads = _present(table["workload"], WORKLOAD_ORDER)
    engines = engines_in(table)
    fig, axes = _grid(len(workloads), 2, w=max(4.5, 0.9 * len(engines) + 1.5), h=3.3)
    for ax, wl in zip(axes, workloads):
        sub = table[table["workload"] == wl]
        width = 0.8 / len(PERCENTILES)
        for i, engine in enumerate(engines):
            sel = sub[sub["engine"] == engine]
            if sel.empty:
                continue
            for j, (metric, _) in enumerate(PERCENTILES):
                _bar(ax, i - 0.4 + width * (j + 0.5), width, sel.iloc[0], metric, PERCENTILE_COLORS[j],
                     peer=engine in PEERS)
        users = sorted(set(sub["users"]))
        ax.set_xticks(range(len(engines)), engines, rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        _plain_log(ax)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.set_title(f"{wl}, {'/'.join(map(str, users))} users", fontsize=10)
        ax.set_ylabel("ms (log)")
    fig.suptitle(f"Latency percentiles by engine, {protocol}", fontsize=11)
    handles = [Patch(color=c, label=name) for (_, name), c in zip(PERCENTILES, PERCENTILE_COLORS)]
    _legend(fig, handles, bool(table["saturated"].any()))
    return fig


def scaling_chart(table: pd.DataFrame, protocol: str) -> Figure:
    """Throughput and p99 against users, one line per engine: a row of two panels per workload.

    ``table``: every aggregated row of one protocol. Users on a log axis when they span 10x or more;
    saturated points hollow.
    """
    workloads = _present(table["workload"], WORKLOAD_ORDER)
    engines = engines_in(table)
    fig = Figure(figsize=(10, 3.0 * len(workloads) + 0.6), layout="constrained")
    axes = fig.subplots(len(workloads), 2, squeeze=False)
    users = sorted(set(table["users"]))
    logx = len(users) > 1 and users[-1] / max(1, users[0]) >= 10
    for (ax_rps, ax_p99), wl in zip(axes, workloads):
        sub = table[table["workload"] == wl]
        for ax, metric, label in ((ax_rps, "rps", "requests/s"), (ax_p99, "p99_ms", "p99 latency, ms")):
            for engine in engines:
                line = sub[sub["engine"] == engine].sort_values("users")
                if line.empty or line[metric].isna().all():
                    continue
                c = _color(engine)
                ls = "--" if engine in PEERS else "-"
                y = line[metric]
                yerr = [(y - line[f"{metric}_min"]).clip(lower=0), (line[f"{metric}_max"] - y).clip(lower=0)]
                ax.errorbar(line["users"], y, yerr=yerr, color=c, linestyle=ls, linewidth=1.2, capsize=2,
                            elinewidth=0.7)
                clean, sat = line[~line["saturated"]], line[line["saturated"]]
                ax.scatter(clean["users"], clean[metric], color=c, s=22, zorder=3)
                ax.scatter(sat["users"], sat[metric], facecolors="white", edgecolors=c, s=34, linewidths=1.4,
                           zorder=4)
            if logx:
                ax.set_xscale("log")
            ax.set_xticks(users, [str(u) for u in users], fontsize=8)
            ax.minorticks_off()
            ax.grid(alpha=0.3)
            ax.set_xlabel("users")
            ax.set_ylabel(label)
            ax.set_title(f"{wl}: {'throughput' if metric == 'rps' else 'p99'}", fontsize=10)
            if metric == "p99_ms" and (sub[metric] > 0).any():
                ax.set_yscale("log")
                _plain_log(ax)
    fig.suptitle(f"Scaling with users, {protocol} (median of repeats, min-max bars)", fontsize=11)
    handles = [Line2D([], [], color=_color(e), linestyle="--" if e in PEERS else "-", marker="o", label=e)
               for e in engines]
    if table["saturated"].any():
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="none",
                              label=SATURATED_NOTE))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8, frameon=False)
    return fig


def protocol_chart(table: pd.DataFrame) -> Figure:
    """HTTP/1.1 against HTTP/2: median requests/s per engine, one bar per protocol, a panel per workload.

    ``table``: aggregated rows, one per (engine, protocol, workload) (``results.peak``).
    """
    workloads = _present(table["workload"], WORKLOAD_ORDER)
    protocols = _present(table["protocol"], PROTOCOL_ORDER)
    engines = engines_in(table)
    fig, axes = _grid(len(workloads), 2, w=max(4.5, 0.8 * len(engines) + 1.5), h=3.3)
    for ax, wl in zip(axes, workloads):
        sub = table[table["workload"] == wl]
        _grouped(ax, sub, "engine", engines, "protocol", protocols, "rps",
                 lambda p: PROTOCOL_COLORS.get(p, "#999999"))
        ax.set_title(wl, fontsize=10)
        ax.set_ylabel("requests/s (peak median)")
    fig.suptitle("HTTP/1.1 against HTTP/2, per engine", fontsize=11)
    handles = [Patch(color=PROTOCOL_COLORS.get(p, "#999999"), label=p) for p in protocols]
    _legend(fig, handles, bool(table["saturated"].any()))
    return fig


def efficiency_chart(table: pd.DataFrame) -> Figure:
    """CPU efficiency (requests per server CPU-second) and memory (peak RSS, MiB), by engine and workload.

    One row of two panels per protocol. ``table``: aggregated rows, one per (engine, protocol, workload)
    (``results.highest_users``).
    """
    protocols = _present(table["protocol"], PROTOCOL_ORDER)
    engines = engines_in(table)
    n_wl = table["workload"].nunique()
    fig = Figure(figsize=(2 * max(5.0, 1.3 * n_wl + 2.5), 3.3 * len(protocols) + 0.6), layout="constrained")
    axes = fig.subplots(len(protocols), 2, squeeze=False)
    for (ax_cpu, ax_mem), proto in zip(axes, protocols):
        sub = table[table["protocol"] == proto]
        workloads = _present(sub["workload"], WORKLOAD_ORDER)
        _grouped(ax_cpu, sub, "workload", workloads, "engine", engines, "req_per_cpu_s", _color)
        ax_cpu.set_ylabel("requests per server CPU-second")
        ax_cpu.set_title(f"{proto}: CPU efficiency", fontsize=10)
        _grouped(ax_mem, sub, "workload", workloads, "engine", engines, "server_rss_mb", _color)
        ax_mem.set_ylabel("server RSS, MiB (peak)")
        ax_mem.set_title(f"{proto}: memory", fontsize=10)
    fig.suptitle("CPU efficiency and memory, at the highest user count measured", fontsize=11)
    _legend(fig, _engine_handles(engines), bool(table["saturated"].any()))
    return fig
