"""``python -m loadtest experiment NAME --quick`` on real servers: each law is checked on the rows
the experiment writes (Little's law for ``wait``, processpool's cores for ``cores``, the loops'
head-of-line blocking for ``interference``)."""

from __future__ import annotations

import csv
import os
import shutil

import pytest

from loadtest import experiments

pytestmark = pytest.mark.slow


def _rows(results, name: str) -> list[dict]:
    with open(os.path.join(results, f"{name}.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def _wrk():
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install wrk; .ci/run does it)")


def test_wait_obeys_littles_law(tmp_path):
    rc = experiments.main(["wait", "--quick", "--engines", "threadpool,selectors", "--results", str(tmp_path)])
    rows = _rows(tmp_path, "wait")
    assert [(r["engine"], r["users"]) for r in rows] == [
        ("threadpool", "1"), ("threadpool", "16"), ("threadpool", "64"),
        ("selectors", "1"), ("selectors", "16"), ("selectors", "64")]
    for r in rows:
        law = experiments.wait_law(r["engine"], int(r["users"]))
        assert abs(float(r["rps"]) - law) <= 0.10 * law, r
        assert r["held"] == "yes" and float(r["server_cpu_us_per_req"]) > 0
    assert rc == 0
    assert set(rows[0]) == set(experiments.COLUMNS)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2+ cores")
def test_cores_processpool_uses_more_than_one(tmp_path):
    experiments.main(["cores", "--quick", "--engines", "threadpool,processpool", "--results", str(tmp_path)])
    rows = {(r["engine"], r["server_cpus"]): float(r["rps"]) for r in _rows(tmp_path, "cores")}
    cpus = str(os.cpu_count())
    assert rows[("processpool", cpus)] > 1.5 * rows[("threadpool", cpus)], rows
    assert rows[("threadpool", cpus)] <= 1.25 * rows[("threadpool", "1")], rows


def test_interference_blocks_the_loop(tmp_path):
    experiments.main(["interference", "--quick", "--engines", "selectors", "--results", str(tmp_path)])
    rows = _rows(tmp_path, "interference")
    assert [r["users"] for r in rows] == ["0", "1", "2"]
    assert all(r["held"] == "yes" for r in rows[1:]), rows  # p99 >= half a /cpu once one runs
    assert float(rows[1]["p99_ms"]) > 2 * float(rows[0]["p99_ms"]), rows


def test_planned_experiments_say_so():
    assert experiments.main(["cost"]) == 2
