"""loadtest/report.py, results.py, charts.py and notebooks/compare_engines.ipynb on a synthetic fixture.

tests/loadtest/fixtures/summary.csv is made-up but shaped like a sweep's output: five servers (the four
engines and uvicorn), h1 and h2c, the plaintext and io workloads, 1/10/50 users, three repeats of plaintext
and two of io; the io numbers follow Little's law (threadpool W = 32, processpool W = 2); uvicorn's h1
plaintext runs at 50 users (3 of 3) and one of asyncio's (1 of 3) have a saturated generator. Two runs
have a meta.json under fixtures/runs/ (workers not given, 2 cores), as the sweep writes them.
"""

from __future__ import annotations

import os

import pytest

from loadtest import __main__ as cli
from loadtest import charts, report
from loadtest import results as R

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "summary.csv")
RUNS = os.path.join(HERE, "fixtures", "runs")
NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(HERE)), "notebooks", "compare_engines.ipynb")
CHARTS = ["throughput", "latency_h1", "latency_h2c", "scaling_h1", "scaling_h2c", "protocols", "efficiency"]
SECTIONS = ["## Throughput by engine", "## Latency percentiles by engine", "## Scaling with users",
            "## Little's law on the io workload", "## HTTP/1.1 against HTTP/2", "## CPU efficiency and memory"]


@pytest.fixture(scope="module")
def df():
    return R.load_summary(FIXTURE)


def test_aggregate_folds_repeats_into_median_min_max(df):
    agg = R.aggregate(df)
    assert len(agg) == 9 * 2 * 3  # (4 engines x 2 protocols + uvicorn h1) x 2 workloads x 3 user counts
    key = (agg["engine"] == "asyncio") & (agg["protocol"] == "h1") & (agg["workload"] == "plaintext") & (
        agg["users"] == 50)
    row = agg[key].iloc[0]
    raw = sorted(df[(df["engine"] == "asyncio") & (df["protocol"] == "h1") & (df["workload"] == "plaintext")
                    & (df["users"] == 50)]["rps"])
    assert (row["runs"], row["rps"], row["rps_min"], row["rps_max"]) == (3, raw[1], raw[0], raw[2])
    assert (row["saturated_runs"], bool(row["saturated"])) == (1, True)
    sat = agg[agg["saturated"]]
    assert set(zip(sat["engine"], sat["users"])) == {("asyncio", 50), ("uvicorn", 50)}
    assert list(R.engines_in(agg)) == ["threadpool", "processpool", "selectors", "asyncio", "uvicorn"]
    cpu = df["rps"] / (df["server_cpu_pct"] / 100)
    assert (df["req_per_cpu_s"] - cpu).abs().max() < 1e-9


def test_littles_law_reads_workers_from_meta(df):
    assert R.workers_for("threadpool", df, RUNS)[0] == 32
    assert R.workers_for("processpool", df, RUNS)[0] == 2  # the default: the run machine's 2 cores
    assert R.workers_for("processpool", df, None) == (None, "not recorded: no meta.json")
    assert R.io_wait_s() == pytest.approx(0.1)
    ll = R.littles_law(R.aggregate(df), df, RUNS)
    tp = ll[(ll["engine"] == "threadpool") & (ll["protocol"] == "h1")].set_index("users")
    assert tp.loc[50, "predicted_rps"] == pytest.approx(320) and tp.loc[10, "predicted_rps"] == pytest.approx(100)
    assert 0.9 < tp.loc[50, "ratio"] <= 1.0
    sel = ll[ll["engine"] == "selectors"].set_index(["protocol", "users"])
    assert sel.loc[("h1", 50), "predicted_rps"] == pytest.approx(500)


def test_saturated_configuration_is_drawn_hatched(df):
    peak = R.peak(R.aggregate(df))
    fig = charts.throughput_chart(peak)
    hatched = [p for ax in fig.axes for p in ax.patches if p.get_hatch()]
    assert len(hatched) == int(peak["saturated"].sum()) == 2  # uvicorn and asyncio, h1 plaintext
    assert any(t.get_text() == charts.SATURATED_NOTE for leg in fig.legends for t in leg.get_texts())


def test_report_writes_charts_report_and_page(tmp_path, capsys):
    out, md, www = tmp_path / "charts", tmp_path / "REPORT.md", tmp_path / "www"
    status = cli.main(["report", "--summary", FIXTURE, "--out", str(out), "--report", str(md), "--www", str(www)])
    assert status == 0, capsys.readouterr().err
    for name in CHARTS:
        assert (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.svg").read_text().lstrip().startswith("<?xml")
        assert (www / "static" / "charts" / f"{name}.svg").exists()
    text = md.read_text()
    for heading in SECTIONS:
        assert heading in text
    assert "- Machine: Synthetic CPU @ 2.0GHz, 2 cores" in text and "- Revision: 2fed21f" in text
    for name in CHARTS:
        assert f"](charts/{name}.png)" in text
    assert text.count("### Findings") == len(SECTIONS) and text.count("### Table") == len(SECTIONS)
    # The saturated runs are named, flagged in the tables, and drawn as such.
    assert "4 of 135 runs had a saturated load generator" in text
    assert "uvicorn h1 plaintext at 50 users (3 run(s))" in text
    assert "| uvicorn | h1 | plaintext | 50 |" in text and "yes (3/3)" in text and "yes (1/3)" in text
    assert "generator saturated: a floor" in text
    assert charts.SATURATED_NOTE in (out / "throughput.svg").read_text()
    # Findings come from the numbers: Little's law for threadpool's io, the winner of each workload.
    assert "threadpool: measured io throughput is" in text and "min(N, W = 32) / 0.1 s" in text
    assert "plaintext, h2c: asyncio leads with" in text
    page = (www / "results.html").read_text()
    assert '<link rel="stylesheet" href="/static/style.css">' in page
    assert '<img src="/static/charts/throughput.svg"' in page and "<table>" in page
    assert "yes (3/3)" in page


def test_report_without_summary_fails_cleanly(tmp_path, capsys):
    assert report.main(["--summary", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "c"), "--no-www"]) == 1
    assert "python -m loadtest sweep" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_on_the_fixture(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("LAB_SUMMARY", FIXTURE)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert FIXTURE in text and "135 runs" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    saturated = [o for o in outputs if "uvicorn-h1-plaintext-u50" in o.get("data", {}).get("text/plain", "")]
    assert saturated, "the saturated runs are listed"
