"""The harness's acceptance tests: its numbers obey Little's law, and its rows are locust's own figures.

Little's law: L = X W. On the io workload each request waits 100 ms in the handler, so a server that can
hold N requests at once serves at most X = N / 0.1 s: threadpool with 8 threads (the sweep's ``--workers 8``, ``--threads 8`` on the server) -> 80 requests/s
whatever the number of users beyond 8; selectors holds all 32 users' requests on its timer heap ->
320 requests/s. Over HTTP/1.1 (h1user) and HTTP/2 h2c (h2user, one stream per user); within 15 %.

Driven through ``python -m loadtest sweep``'s own code (``sweep.main``: server start, port poll,
warm-up, locust headless with CSVs, psutil sampling, graceful stop, summary.csv), short runs.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from loadtest.harness.generators import parse_locust

from loadtest.experiments import sweep

pytestmark = pytest.mark.slow

DURATION = "6"
CASES = {"threadpool": (["--workers", "8"], 80.0), "selectors": ([], 320.0)}


@pytest.fixture(scope="module", params=sorted(CASES))
def swept(request, tmp_path_factory):
    """One sweep per engine: io workload, 32 users, h1 and h2c; returns (engine, expected, rows, dir)."""
    engine = request.param
    extra, expected = CASES[engine]
    results = tmp_path_factory.mktemp(f"results-{engine}")
    rc = sweep.main(["--engines", engine, *extra, "--protocols", "h1,h2c", "--workloads", "io", "--users", "32",
                     "--duration", DURATION, "--warmup", "1", "--results", str(results)])
    assert rc == 0
    rows = sweep.read_summary(str(results / "summary.csv"))
    return engine, expected, rows, results


def test_littles_law(swept):
    engine, expected, rows, _ = swept
    assert sorted(r["protocol"] for r in rows) == ["h1", "h2c"]
    for row in rows:
        assert row["engine"] == engine and row["workload"] == "io" and row["users"] == "32"
        assert int(row["failures"]) == 0, row
        assert float(row["rps"]) == pytest.approx(expected, rel=0.15), row
        assert row["generator_saturated"] == "0", row
        assert float(row["p50_ms"]) >= 100  # nobody answers /io?ms=100 faster than 100 ms


def test_summary_row_agrees_with_locust_csv(swept):
    _, _, rows, results = swept
    for row in rows:
        run_dir = os.path.join(results, "runs", row["run_id"])
        st = parse_locust(os.path.join(run_dir, "locust"))
        assert int(row["requests"]) == st.requests and int(row["failures"]) == st.failures
        assert float(row["rps"]) == pytest.approx(st.rps, abs=0.01)
        for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"):
            assert float(row[key]) == pytest.approx(getattr(st, key), abs=0.001), key
        # and the window locust measured is the one asked for
        assert float(row["duration_s"]) == pytest.approx(float(DURATION), abs=1.0)
        with open(os.path.join(run_dir, "meta.json")) as f:
            meta = json.load(f)
        assert meta["summary_row"]["run_id"] == row["run_id"]
        for key in ("server_command", "generator_command", "engine_options", "machine", "sweep_command"):
            assert meta[key], key
        assert {"git", "python", "cpu", "cores"} <= set(meta["machine"])
        assert meta["samples"]["server_connections_max"] >= 1
        assert float(row["server_rss_mb"]) > 0 and row["cpu"] and row["python"] and row["git_rev"]


@pytest.mark.parametrize("tool,protocols", [("wrk", "h1"), ("h2load", "h1,h2c")])
def test_generator_tools_fill_the_same_schema(tool, protocols, tmp_path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    rc = sweep.main(["--engines", "selectors", "--protocols", protocols, "--workloads", "io", "--users", "8",
                     "--duration", "2", "--warmup", "0", "--tool", tool, "--results", str(tmp_path)])
    assert rc == 0
    with open(tmp_path / "summary.csv", newline="") as f:
        header = f.readline().strip().split(",")
    assert header == sweep.SUMMARY_COLUMNS
    rows = sweep.read_summary(str(tmp_path / "summary.csv"))
    assert [r["protocol"] for r in rows] == protocols.split(",")
    for row in rows:
        assert int(row["failures"]) == 0 and float(row["rps"]) == pytest.approx(80.0, rel=0.15), row
        assert 100 <= float(row["p50_ms"]) <= float(row["p99_ms"]) <= float(row["max_ms"])
        assert row["generator_cpu_pct"] and row["server_cpu_pct"]
