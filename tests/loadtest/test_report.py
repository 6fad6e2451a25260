"""loadtest/report/, results.py, charts.py and notebooks/compare_engines.ipynb on a synthetic fixture.

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
from loadtest.report import charts
from loadtest import report
from loadtest.report import results as R

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "summary.csv")
RUNS = os.path.join(HERE, "fixtures", "runs")
#: quick runs of every experiment (python -m loadtest experiment all --quick), committed as a fixture
EXPERIMENTS = os.path.join(HERE, "fixtures", "experiments")
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
    assert set(zip(sat["engine"], sat["users"])) == {("asyncio", 50), ("uvicorn-httptools+app", 50)}
    assert list(R.engines_in(agg)) == ["threadpool", "processpool", "selectors", "asyncio", "uvicorn-httptools+app"]
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
    status = cli.main(["report", "--summary", FIXTURE, "--out", str(out), "--report", str(md), "--www", str(www),
                       "--experiments", str(tmp_path / "none")])
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
    # The saturated runs are counted (not listed in prose), flagged in the tables, and drawn as such.
    assert "4 of 135 runs had a saturated load generator (h1 plaintext: 4)" in text
    assert "| uvicorn-httptools+app | h1 | plaintext | 50 |" in text and "yes (3/3)" in text and "yes (1/3)" in text
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
    assert report.main(["--summary", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "c"), "--no-www",
                        "--experiments", str(tmp_path / "none")]) == 1
    assert "python -m loadtest sweep" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_report_leads_with_the_verdict_of_the_experiments(tmp_path, capsys):
    out, md, www = tmp_path / "charts", tmp_path / "REPORT.md", tmp_path / "www"
    status = cli.main(["report", "--summary", FIXTURE, "--out", str(out), "--report", str(md), "--www", str(www),
                       "--experiments", EXPERIMENTS])
    assert status == 0, capsys.readouterr().err
    text = md.read_text()
    # the verdict comes first: a row per question, a column per engine, the law, why
    assert text.index("## The verdict") < text.index("## cost:") < text.index("## Sweep: Throughput by engine")
    verdict = text[text.index("## The verdict"):text.index("## cost:")]
    assert "| question | threadpool | processpool | selectors | asyncio | law held | why |" in verdict
    for name in ("cost", "wait", "cores", "interference", "latency", "connections", "multiplex"):
        assert f"| {name}: " in verdict, name
        assert f"Command: `python -m loadtest experiment {name}`" in text
    assert "processpool" in verdict and "x its one-core rate" in verdict
    for name in ("exp_cost_h1", "exp_wait", "exp_cores", "exp_interference", "exp_latency_cpu", "exp_connections",
                 "exp_multiplex"):
        assert (out / f"{name}.png").stat().st_size > 1000, name
        assert f"](charts/{name}.png)" in text
        assert (www / "static" / "charts" / f"{name}.svg").exists()
    # the older sweep rows stay, told apart by their title and revision
    assert "From the closed-loop locust sweep in summary.csv (git 2fed21f)" in text
    page = (www / "results.html").read_text()
    assert page.index('id="verdict"') < page.index('id="exp-cost"')


def test_report_writes_the_verdict_into_the_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Lab\n\nintro\n<!-- verdict:start -->\nSTALE TEXT\n<!-- verdict:end -->\nrest\n")
    assert report.main(["--summary", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "charts"), "--no-www",
                        "--report", str(tmp_path / "REPORT.md"), "--experiments", EXPERIMENTS,
                        "--readme", str(readme)]) == 0, capsys.readouterr().err
    text = readme.read_text()
    assert text.startswith("# Lab\n\nintro\n<!-- verdict:start -->\n") and text.endswith("<!-- verdict:end -->\nrest\n")
    assert "STALE TEXT" not in text and "| question | threadpool |" in text and "](charts/exp_cores.png)" in text
    # the front door only: what to deploy, the verdict, one chart; the rest is REPORT.md's
    assert "**What to deploy**" in text and "What Python" not in text and "Interpreter workers" not in text
    assert "one run per row: no interval" in text  # the fixture's rows have no rounds, and it says so


def test_report_from_experiments_alone(tmp_path, capsys):
    md = tmp_path / "REPORT.md"
    assert report.main(["--summary", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "c"), "--no-www",
                        "--report", str(md), "--experiments", EXPERIMENTS]) == 0, capsys.readouterr().err
    assert "## The verdict" in md.read_text() and "## Sweep" not in md.read_text()


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_on_the_fixture(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("LAB_SUMMARY", FIXTURE)
    monkeypatch.setenv("LAB_EXPERIMENTS", EXPERIMENTS)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert FIXTURE in text and "135 runs" in text
    assert "== cost:" in text and "== multiplex:" in text  # the experiments first, in their order
    assert text.index("== cost:") < text.index("== wait:") < text.index("== multiplex:")
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    saturated = [o for o in outputs if "uvicorn-h1-plaintext-u50" in o.get("data", {}).get("text/plain", "")]
    assert saturated, "the saturated runs are listed"


#: quick runs of cores, wait and deploy with the workers axis (hybrids x2 and the peers at 2 workers)
WORKERS = os.path.join(HERE, "fixtures", "workers")


def test_what_to_deploy_is_computed_from_the_rows():
    """The first table: per workload the best deployment (peers included), its runner-up, by how
    much; each figure is the rows' own."""
    import pandas as pd

    from loadtest.report import verdict as V

    frames = V.load(WORKERS)
    table = V.deploy_table(frames)
    assert list(table["workload"].str.split().str[0]) == ["CPU-heavy", "wait-heavy", "mixed"]
    cores = frames["cores"][frames["cores"]["server_cpus"] > 1].sort_values("rps", ascending=False)
    first, second = cores.iloc[0], cores[cores["engine"] != cores.iloc[0]["engine"]].iloc[0]
    row = table.iloc[0]
    assert row["deploy"] == f"{first['engine'].split(' x')[0]} x{int(first['workers'])}"
    assert row["by"] == f"{first['rps'] / second['rps']:.2f}x"
    mixed = frames["deploy"][frames["deploy"]["held"] == "yes"].sort_values("p99_ms")
    assert table.iloc[2]["figure"].startswith(f"p99 {mixed.iloc[0]['p99_ms']:.1f} ms")
    assert "python" not in table  # the build is named once, above the tables
    # the verdict gains the hybrid columns
    columns = list(V.verdict(frames).columns)
    assert columns[1:5] == ["threadpool", "processpool", "selectors", "asyncio"]
    assert {"threadpool x2", "selectors x2", "asyncio x2"} <= set(columns)
    assert isinstance(table, pd.DataFrame)


def test_report_opens_with_what_to_deploy(tmp_path, capsys):
    md = tmp_path / "REPORT.md"
    assert report.main(["--summary", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "charts"),
                        "--report", str(md), "--www", str(tmp_path / "www"), "--experiments", WORKERS]) == 0
    text = md.read_text()
    assert text.index("## What to deploy") < text.index("## The verdict")
    page = (tmp_path / "www" / "results.html").read_text()
    assert page.index('id="deploy-what"') < page.index('id="verdict"')
    assert (tmp_path / "charts" / "exp_deploy.png").stat().st_size > 1000


def test_python_change_and_interpreter_workers_compare_like_with_like():
    """Two Pythons in one run: each server against itself (interpreter workers and the "/" ratio
    rows left out), the knee per workload; interpreter workers against process workers of the same
    W under the same Python, in every experiment that has both."""
    import pandas as pd

    from loadtest.report import verdict as V

    old, new = "CPython 3.11.7 (GCC)", "CPython 3.14.10 (GCC)"

    def frame(rows):
        return pd.DataFrame([{"note": "", "server_cpu_us_per_req": None, "server_cpus": 1, **r} for r in rows])

    frames = {
        "cost": frame([{"engine": e, "python": py, "workload": "plaintext", "protocol": "h1", "rps": rps,
                        "server_cpu_us_per_req": 1e6 / rps}
                       for e, py, rps in (("selectors", old, 30000), ("selectors", new, 45000),
                                          ("selectors x1 (interpreters)", new, 36000),
                                          ("best engine (selectors) / granian", old, 1.2))]),
        "latency": frame([{"engine": "selectors", "python": py, "workload": w, "protocol": "h2c open loop knee",
                           "rps": rps} for py, w, rps in ((old, "cpu", 100), (new, "cpu", 150),
                                                           (old, "plaintext", 9000), (new, "plaintext", 9900))]),
        "wait": frame([{"engine": e, "python": new, "users": n, "rps": rps}
                       for e, n, rps in (("selectors x2", 1000, 9000), ("selectors x2 (interpreters)", 1000, 8100),
                                         ("selectors x2", 10, 99))]),
        "deploy": frame([{"engine": e, "python": new, "rps": 500, "p99_ms": p99}
                         for e, p99 in (("selectors x2", 20.0), ("selectors x2 (interpreters)", 30.0))]),
        "interference": frame([{"engine": e, "python": new, "users": 1, "p99_ms": p99,
                                "note": f"one /cpu takes 9.0 ms here; {share}% of probes stalled (>= 4.5 ms)"}
                               for e, p99, share in (("selectors x2", 10.0, 50), ("selectors x2 (interpreters)", 12.0, 48))]),
    }
    change = V.python_change(frames)
    assert list(change["server"]) == ["selectors"] * 3
    assert list(change["ratio"]) == ["1.50x", "1.50x", "1.10x"]
    assert list(change["measure"])[1:] == ["latency knee /cpu (h2c open loop)", "latency knee /plaintext (h2c open loop)"]
    workers = V.interpreter_workers(frames).set_index("measure")
    assert workers.loc["cost h1 /plaintext, one core", "ratio"] == "0.80x"
    assert workers.loc["wait /io?ms=100, 1000 in flight", "ratio"] == "0.90x"
    assert workers.loc["deploy: 90 % /plaintext + 10 % /cpu, open loop", "ratio"] == "1.50x p99"
    row = workers.loc["interference: /plaintext while 1 connection runs /cpu"]
    assert (row["in interpreters"], row["ratio"]) == ("p99 12.0 ms, 48 % stalled", "1.20x p99")
    assert (workers["python"] == "3.14.10").all()


def _wait_rows(tmp_path, rows):
    import csv

    from loadtest.experiments.base import COLUMNS

    d = tmp_path / "exp"
    d.mkdir()
    with open(d / "wait.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**{c: "" for c in COLUMNS}, "experiment": "wait", "protocol": "h1", "workload": "io",
                        "git_rev": "abc1234", "python": "CPython 3.11.7", "gil": "yes", "cpu": "x",
                        "server_cpus": 2, **r})
    return d


def test_a_failed_run_shows_as_failed_never_as_zero(tmp_path):
    from loadtest.report import verdict

    rows = []
    for rnd in (1, 2, 3):
        rows.append({"round": rnd, "seed": 1, "engine": "selectors", "workers": 1, "users": 1000,
                     "rps": 9000 + rnd, "requests": 90000, "held": "yes", "expected": "10000 req/s"})
        rows.append({"round": rnd, "seed": 1, "engine": "processpool", "workers": 2, "users": 1000, "rps": "",
                     "requests": 0, "held": "", "note": "failed: no answer counted; 1000 requests without an answer",
                     "expected": "20 req/s"})
    frames = verdict.load(str(_wait_rows(tmp_path, rows)))
    table = verdict.verdict(frames)
    cell = table.iloc[0]["processpool"]
    assert cell.startswith("failed") and not __import__("re").search(r"(^|[^\d,])0 req/s", cell), cell
    assert "[9,001, 9,003] req/s (n = 3)" in table.iloc[0]["selectors"]


def test_the_report_claims_only_what_its_rows_give(tmp_path):
    """No template sentence about repeats: how many rounds stand behind the figures comes from the
    rows (one round here: the report says no interval can be given)."""
    from loadtest.report import rounds, verdict

    d = _wait_rows(tmp_path, [{"engine": "selectors", "workers": 1, "users": 10, "rps": 100, "requests": 1000,
                               "held": "yes"}])
    assert "one run per row (no rounds): no interval can be given" in rounds.provenance(verdict.load_rounds(str(d)))
    page = report.to_markdown([], {"git_rev": ["abc1234"], "cpu": ["x"], "cores": 2, "kernel": "",
                                     "python": ["CPython 3.11.7"], "runs": 1, "first": ""}, [], "charts", "x")
    assert "medians of repeated runs" not in page


def test_the_a_a_control_that_is_not_a_tie_is_a_harness_fault(tmp_path):
    from loadtest.report import rounds, verdict

    rows = []
    for rnd in range(1, 6):
        rows.append({"round": rnd, "seed": 1, "engine": "selectors", "workers": 1, "users": 10, "rps": 1000 + rnd})
        rows.append({"round": rnd, "seed": 1, "engine": "selectors (A/A)", "workers": 1, "users": 10,
                     "rps": 1500 + rnd})
    table = rounds.control_table(verdict.load_rounds(str(_wait_rows(tmp_path, rows))))
    assert list(table["verdict"]) == ["NOT A TIE"]
    section = verdict.rigor_section(str(tmp_path / "exp"))
    assert section.findings[0].startswith("HARNESS FAULT")


def test_a_cell_is_one_load_point_on_one_set_of_cores(tmp_path):
    """cores measures each engine on one core and on every core at the same users: two cells,
    never folded into one median."""
    import csv

    from loadtest.experiments.base import COLUMNS
    from loadtest.report import verdict

    d = tmp_path / "exp"
    d.mkdir()
    with open(d / "cores.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for rnd in (1, 2, 3):
            for cpus, rps in ((1, 200 + rnd), (2, 400 + rnd)):
                w.writerow({**{c: "" for c in COLUMNS}, "experiment": "cores", "round": rnd, "seed": 1,
                            "engine": "selectors", "workers": 1, "protocol": "h1", "workload": "cpu", "users": 8,
                            "server_cpus": cpus, "rps": rps, "requests": 1000, "git_rev": "abc1234",
                            "python": "CPython 3.11.7", "gil": "yes", "cpu": "x"})
    cores = verdict.load(str(d))["cores"]
    assert sorted(zip(cores["server_cpus"], cores["rps"], cores["n"])) == [(1, 202, 3), (2, 402, 3)]


def _cores_rows(d, rows):
    import csv

    from loadtest.experiments.base import COLUMNS

    d.mkdir(exist_ok=True)
    with open(d / "cores.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**{c: "" for c in COLUMNS}, "experiment": "cores", "seed": 1, "protocol": "h1",
                        "workload": "cpu", "users": 16, "requests": 1000, "git_rev": "abc1234", "cpu": "x", **r})
    return d


def test_free_threading_is_judged_by_paired_ratios_and_knows_a_tie(tmp_path):
    """Three builds in one run: threadpool --threads 2 scales on 3.14t (every round's ratio near 1.9:
    'scales') and is a tie with one thread under PYTHON_GIL=1 (ratios around 1.0); a GIL build
    without the --threads rows has none; builds without a free-threaded one give no section."""
    from loadtest.experiments.base import deployment_of, pool_threads, thread_workers
    from loadtest.report import freethreading as FT

    ft = "CPython 3.14.7 (GCC 12.2.0, free-threaded)"
    ftgil = "CPython 3.14.7 (GCC 12.2.0, free-threaded, PYTHON_GIL=1)"
    gil = "CPython 3.14.10 (GCC 16.2.0, PGO, LTO)"
    rows = []
    for rnd in range(1, 6):
        for python, two in ((ft, 380 + rnd), (ftgil, 200 + (-1) ** rnd * 3)):
            rows.append({"round": rnd, "engine": "threadpool --threads 1", "workers": 1, "server_cpus": 2,
                         "rps": 200, "python": python, "gil": "no" if python == ft else "yes"})
            rows.append({"round": rnd, "engine": "threadpool --threads 2", "workers": 1, "server_cpus": 2,
                         "rps": two, "python": python, "gil": "no" if python == ft else "yes"})
        rows.append({"round": rnd, "engine": "selectors", "workers": 1, "server_cpus": 1, "rps": 250 + rnd,
                     "python": gil, "gil": "yes"})
    d = _cores_rows(tmp_path / "exp", rows)
    sections = FT.freethreading_sections(str(d))
    table = sections[0].table.set_index("configuration")
    cell = table.loc["threadpool --threads 2", "3.14.7t"]
    assert "(scales)" in cell and cell.startswith("38"), cell
    assert "(a tie with one)" in table.loc["threadpool --threads 2", "3.14.7t PYTHON_GIL=1"]
    assert table.loc["threadpool --threads 2", "3.14.10"] == "–"
    tax = sections[1].table.set_index("engine (one core, /cpu)")
    assert tax.loc["selectors", "3.14.10"].startswith("253 [")
    # the names round-trip, so the rows find their baselines
    for dep in (pool_threads(4), thread_workers("asyncio", 2)):
        assert deployment_of(dep.name) == dep
    assert FT.freethreading_sections(str(_cores_rows(tmp_path / "gil", [r for r in rows if r["python"] == gil]))) == []


def test_the_tax_per_request_names_each_build_apart():
    """cost's CPU per request per build: two builds of one version (3.14.7t with the GIL off and
    on) keep two names, each build's median over the first's is the ratio, and rows of GIL builds
    alone give no table."""
    import pandas as pd

    from loadtest.report import freethreading as FT
    from loadtest.report.frames import _short

    base = "CPython 3.11.7 (GCC 12.2.0)"
    ft = "CPython 3.14.7 (GCC 12.2.0, free-threaded)"
    ftgil = "CPython 3.14.7 (GCC 12.2.0, free-threaded, PYTHON_GIL=1)"
    assert [_short(p) for p in (base, ft, ftgil)] == ["3.11.7", "3.14.7t", "3.14.7t PYTHON_GIL=1"]
    rows = [{"round": rnd, "engine": "selectors", "protocol": "h1", "workload": "plaintext", "python": python,
             "server_cpu_us_per_req": us + rnd}
            for rnd in range(1, 6) for python, us in ((base, 20), (ft, 25), (ftgil, 40))]
    table = FT.cost_tax_table(pd.DataFrame(rows)).set_index("engine (one core, h1 /plaintext)")
    assert table.loc["selectors", "3.11.7"] == "23.0 [21.0, 25.0] µs"
    assert table.loc["selectors", "3.14.7t PYTHON_GIL=1"].endswith("(1.87x)")
    assert table.loc["threadpool", "3.14.7t"] == "–"
    assert FT.cost_tax_table(pd.DataFrame([r for r in rows if r["python"] == base])).empty


def test_an_experiment_run_in_pieces_names_every_piece_command(tmp_path):
    """A folder whose manifest.json holds two pieces of one experiment (one Python each) names both
    commands, in the order they ran, not only the last one."""
    import json

    from loadtest.report import verdict

    pieces = [{"experiment": "cores", "command": "python -m loadtest experiment all --only cores --python python3"},
              {"experiment": "cost", "command": "python -m loadtest experiment all --only cost"},
              {"experiment": "cores", "command": "python -m loadtest experiment all --only cores --python py3.14t"},
              {"experiment": "cores", "command": "python -m loadtest experiment all --only cores --python python3"}]
    (tmp_path / "manifest.json").write_text(json.dumps(pieces))
    commands = verdict._manifest_commands(str(tmp_path))
    assert commands["cores"] == [pieces[0]["command"], pieces[2]["command"]]
    sentence = verdict._command_sentence(commands["cores"], "unused")
    assert sentence == (f"Commands (2 pieces, manifest.json): `{pieces[0]['command']}`; `{pieces[2]['command']}`")
    assert verdict._command_sentence(commands["cost"], "unused") == f"Command: `{pieces[1]['command']}`"
    assert verdict._command_sentence(None, "python -m loadtest experiment wait") == (
        "Command: `python -m loadtest experiment wait`")
