"""The experiments' charts: one (or a few) per experiment, each point the median of its rounds
with its 95 % interval as an error bar, a failed run marked (a red x, never a 0 or a gap), linear
axes for bars, and one colour key: an engine and its hybrids in the engine's colour, every peer grey.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from loadtest.experiments.base import ENGINES
from loadtest.experiments.latency import latency_dir, safe_name
from loadtest.report.frames import _engines, _is_hybrid, _kib, _model, _short

__all__ = ["charts"]

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
    color = _colour

    def style(e: str) -> str:  # a hybrid dashed
        return "o--" if _is_hybrid(e) else "o-"

    if name == "cost":
        out = []
        for proto in [p for p in ("h1", "h2c -m1", "h2c -m16") if p in set(df["protocol"])]:
            sub = df[(df["protocol"] == proto) & (df["workload"] == "plaintext")
                     & ~df["engine"].str.contains(" / ", regex=False)].sort_values("rps")
            fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.35 * len(sub) + 1.5))
            colors = [_colour(e) for e in sub["engine"]]
            a.barh(sub["engine"], sub["rps"].fillna(0), color=colors, xerr=_err(sub, "rps"), ecolor="black",
                   capsize=2)
            _mark_failed(a, sub, "rps", horizontal=True)
            a.set_xlabel("requests/s (one core); bar: median, line: 95 % interval")
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
            ax.errorbar(sub["users"], sub["rps"], yerr=_err(sub, "rps"), fmt=style(e), color=color(e), label=e,
                        capsize=2)
            _mark_failed(ax, sub, "rps", x="users")
            law = [float(str(x).split()[0]) for x in sub["expected"]]
            ax.plot(sub["users"], law, ":", color=color(e))
        _label(ax, "requests in flight N", "requests/s (dotted: Little's law)", "wait: /io?ms=100", logx=True)
        return [save(fig, "exp_wait")]
    if name == "cores":
        names = engines + [n for n in dict.fromkeys(df["engine"]) if n not in engines]  # then the peers
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
        for i, e in enumerate(names):
            sub = df[df["engine"] == e]
            for dx, part, alpha in ((-0.2, sub[sub["server_cpus"] == 1], 0.5), (0.2, sub[sub["server_cpus"] > 1], 1.0)):
                if part.empty:
                    continue
                rps = part.iloc[[0]]
                if pd.isna(rps["rps"].iloc[0]):
                    ax.plot([i + dx], [0], "x", color="red", markersize=8)
                    continue
                ax.bar(i + dx, rps["rps"].iloc[0], 0.4, color=color(e), alpha=alpha, yerr=_err(rps, "rps"),
                       ecolor="black", capsize=2)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_ylabel("/cpu requests/s (line: 95 % interval; red x: failed)")
        ax.set_title("cores: one core (light) against every core (dark); peers grey")
        fig.tight_layout()
        return [save(fig, "exp_cores")]
    if name == "deploy":
        sub = df.sort_values("p99_ms", ascending=False)
        fig, ax = plt.subplots(figsize=(6, max(3, 0.3 * len(sub))))
        ax.barh(range(len(sub)), sub["p99_ms"].fillna(0), color=[color(e) for e in sub["engine"]],
                xerr=_err(sub, "p99_ms"), ecolor="black", capsize=2)
        ax.set_yticks(range(len(sub)), [f"{e}{'' if h == 'yes' else ' (short of the rate)'}"
                                        for e, h in zip(sub["engine"], sub["held"])])
        ax.set_xlabel("p99, ms (from the intended send time; line: 95 % interval)")
        ax.set_title("deploy: 90 % /plaintext, 10 % /cpu, open loop, " + str(sub.iloc[0]["expected"]))
        fig.tight_layout()
        return [save(fig, "exp_deploy")]
    if name == "interference":
        fig, ax = plt.subplots(figsize=(6, 4))
        for e in engines:
            sub = df[df["engine"] == e].sort_values("users")
            ax.errorbar(sub["users"], sub["p99_ms"], yerr=_err(sub, "p99_ms"), fmt=style(e), color=color(e), label=e,
                        capsize=2)
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
            sub = io[io["engine"] == e].set_index("protocol").reindex(shapes).reset_index()
            ax.errorbar(range(len(shapes)), sub["rps"], yerr=_err(sub, "rps"), fmt="o-", color=_colour(e), label=e,
                        capsize=2)
            _mark_failed(ax, sub.assign(x=range(len(shapes))), "rps", x="x")
        ax.set_xticks(range(len(shapes)), shapes, rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel("/io?ms=100 requests/s")
        ax.set_title("multiplex: C connections x M streams = 128 (red x: failed)")
        ax.legend()
        return [save(fig, "exp_multiplex")]
    return []


def _colour(name: str) -> str:
    """The one colour key of every chart: an engine (and its hybrids, its A/A twin) in its
    colour, every peer grey."""
    from loadtest.report import charts as C

    model = _model(str(name).removesuffix(" (A/A)").removesuffix(" (interpreters)").removesuffix(" (threads)"))[0]
    return C.ENGINE_COLORS[model] if model in ENGINES else "#999999"


def _err(df: pd.DataFrame, col: str):
    """Asymmetric error bars from the cell's interval (``COL_low``, ``COL_high``), or None."""
    lo, hi = f"{col}_low", f"{col}_high"
    if lo not in df or hi not in df or df[lo].isna().all():
        return None
    mid = pd.to_numeric(df[col], errors="coerce")
    return [(mid - pd.to_numeric(df[lo], errors="coerce")).clip(lower=0).fillna(0).to_numpy(),
            (pd.to_numeric(df[hi], errors="coerce") - mid).clip(lower=0).fillna(0).to_numpy()]


def _mark_failed(ax, df: pd.DataFrame, col: str, x: str | None = None, horizontal: bool = False) -> None:
    """A red x where a run failed (no figure): a failed run is shown, never dropped or drawn as 0."""
    failed = df[pd.to_numeric(df[col], errors="coerce").isna()]
    if failed.empty:
        return
    if horizontal:
        ax.plot([0] * len(failed), list(failed["engine"]), "x", color="red", markersize=8, label="failed")
    else:
        finite = pd.to_numeric(df[col], errors="coerce").dropna()
        floor = float(finite[finite > 0].min()) if (finite > 0).any() else 1.0
        ax.plot(list(failed[x]), [floor] * len(failed), "x", color="red", markersize=8)


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
            ax.set_title(e, color=_colour(e))
        axes[0][0].set_ylabel("latency, ms (from the intended send time)")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"latency against offered load, /{workload} (red x: generator-bound)")
        out.append(save(fig, f"exp_latency_{workload}"))
        spectrum = _spectrum(exp_dir, workload, engines, save, str(sub["python"].iloc[0]) if "python" in sub else "")
        if spectrum:
            out.append(spectrum)
    return out


def _spectrum(exp_dir: str, workload: str, engines: list[str], save, python: str = "") -> str | None:
    """HdrHistogram-style percentile spectrum at 80 % of each engine's ceiling (log 1/(1-p) axis),
    from the histograms of ``python``'s runs (experiments/latency.py's ``latency_dir``: one set per
    Python, the last round's)."""
    import matplotlib.pyplot as plt
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader

    from loadtest.users.openloop import HIGHEST_US, SIGNIFICANT_DIGITS

    fig, ax = plt.subplots(figsize=(6.5, 4))
    drawn = False
    for e in engines:
        path = os.path.join(latency_dir(exp_dir, python), f"{safe_name(e)}-{workload}-80_latency.hdr")
        if not os.path.exists(path):
            continue
        h = HistogramLogReader(path, HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)).get_next_interval_histogram()
        if h is None or not h.get_total_count():
            continue
        ps = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
        xs = [1 / (1 - p / 100) for p in ps]
        ax.plot(xs, [h.get_value_at_percentile(p) / 1000 for p in ps], "o-", color=_colour(e), label=e,
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
    ax.set_title(f"percentile spectrum at 80 % of the ceiling, /{workload}, Python {_short(python)}")
    ax.legend()
    return save(fig, f"exp_spectrum_{workload}")
