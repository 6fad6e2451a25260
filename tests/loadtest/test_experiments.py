"""``python -m loadtest experiment all --quick`` on real servers, once (about 4 minutes): each law
is checked on the rows the experiments write (Little's law for ``wait`` and ``multiplex``,
processpool's cores for ``cores``, the loops' head-of-line blocking for ``interference``, the
open loop's achieved rate for ``latency``, the held connections for ``connections``, the peers'
ratio rows for ``cost``). The performance targets themselves are benchmark figures, printed and
written, never asserted here."""

from __future__ import annotations

import csv
import os
import re
import shutil

import pytest

from loadtest import experiments
from loadtest.experiments.base import HYBRIDS, PEERS_AT_W, server_cores

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first test runs the whole quick set


def _rows(results, name: str) -> list[dict]:
    with open(os.path.join(results, f"{name}.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The whole reference set, quick, all four engines, one round: its results folder (the
    rounds themselves: test_rounds_are_shuffled_repeats_with_an_a_a_control)."""
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian: apt-get install wrk nghttp2-client; .ci/run does it)")
    out = tmp_path_factory.mktemp("experiments")
    assert experiments.main(["all", "--quick", "--repeats", "1", "--results", str(out)]) == 0
    return out


def test_every_experiment_wrote_its_rows(results):
    for name in experiments.EXPERIMENTS:
        rows = _rows(results, name)
        assert rows, name
        assert set(rows[0]) == set(experiments.COLUMNS)
        assert all(r["experiment"] == name for r in rows)
        assert {r["engine"] for r in rows} >= set(experiments.ENGINES), name


def test_wait_obeys_littles_law(results):
    rows = _rows(results, "wait")
    assert sorted((r["engine"], int(r["users"])) for r in rows if r["engine"] in ("threadpool", "selectors")) == [
        ("selectors", 1), ("selectors", 16), ("selectors", 64),
        ("threadpool", 1), ("threadpool", 16), ("threadpool", 64)]
    judged = [r for r in rows if r["held"]]
    assert len(judged) >= 9, rows  # unjudged: no steady state in a 2 s run (experiments.steady)
    # the law is checked on the four configurations and on the loops x W (unbounded, as one loop);
    # a pool x W and the peers are reported against it (an uneven spread of connections over the
    # processes is theirs to show)
    w = server_cores()
    ours = set(experiments.ENGINES) | {f"{e} x{w}" for e in ("selectors", "asyncio")}
    assert ours <= {r["engine"] for r in judged}, judged
    for r in (r for r in judged if r["engine"] in ours):
        law = experiments.wait_law(r["engine"], int(r["users"]))
        want = experiments.window_expected(int(r["users"]), law, float(r["duration_s"]))
        assert abs(float(r["rps"]) - want) <= 0.10 * want, r
        assert r["held"] == "yes"
        # the server's CPU is read from the kernel's clock ticks (10 ms): a run of a few waits may
        # use less than one, and then the row says so instead of a figure
        assert (float(r["server_cpu_us_per_req"]) > 0 if r["server_cpu_us_per_req"]
                else "below the kernel's 10 ms CPU clock tick" in r["note"]), r


def test_multiplex_obeys_littles_law(results):
    rows = [r for r in _rows(results, "multiplex") if r["workload"] == "io"]
    assert {r["protocol"] for r in rows} == {"h1 -c128", "h2c -c1 -m128", "h2c -c128 -m1"}
    judged = [r for r in rows if r["held"]]
    assert {r["engine"] for r in judged} >= {"selectors", "asyncio"}, rows
    for r in judged:
        assert r["held"] == "yes", r
    # a failed run (processpool, 128 streams on 2 workers, past h2load's timeout) has no rate, and says why
    assert all(r["rps"] or r["note"].startswith("failed") for r in rows), rows
    by = {(r["engine"], r["protocol"]): float(r["rps"]) for r in rows if r["rps"]}
    # one connection of 128 streams: the loops hold 100 (MAX_CONCURRENT_STREAMS), threadpool 8
    assert by[("selectors", "h2c -c1 -m128")] > 5 * by[("threadpool", "h2c -c1 -m128")]


def test_cost_measures_engines_and_peers(results):
    rows = _rows(results, "cost")
    servers = {r["engine"] for r in rows if r["workload"] == "plaintext" and r["rps"] and float(r["rps"]) > 0}
    assert servers >= {*experiments.ENGINES, "uvicorn-httptools", "gunicorn-gthread", "granian"}, servers
    ratios = [r for r in rows if " / " in r["engine"]]
    assert len(ratios) == 3 and all(r["held"] in ("yes", "NO") for r in ratios), ratios
    assert all(float(r["server_cpu_us_per_req"]) > 0 for r in rows if " / " not in r["engine"])
    assert "selectors (A/A)" in {r["engine"] for r in rows}


def test_latency_open_loop_reaches_the_offered_rate_below_the_ceiling(results):
    rows = [r for r in _rows(results, "latency") if r["protocol"] == "h2c open loop"]
    assert len(rows) == 2 * (len(experiments.ENGINES) + 1)  # and the A/A twin
    for r in rows:
        offered = float(r["expected"].split()[1])
        if "50 % of" in r["note"]:
            assert float(r["rps"]) == pytest.approx(offered, rel=0.05), r
    knees = [r for r in _rows(results, "latency") if r["protocol"] == "h2c open loop knee"]
    assert len(knees) == len(experiments.ENGINES) + 1
    for k in knees:  # a knee is an offered rate, or none up to the highest load: never "0 req/s"
        assert (k["rps"] and float(k["rps"]) > 0) or (not k["rps"] and "no knee up to" in k["expected"]), k


def test_connections_are_held(results):
    rows = _rows(results, "connections")
    assert {r["protocol"] for r in rows} == {"h1 idle keep-alive", "h2c stream open"}
    for r in rows:
        assert r["users"] == "500" and r["held"] != "NO", r
        assert "KiB RSS" in r["note"]


def test_rows_say_how_many_workers(results):
    """Every row names its worker count; the hybrids (model x W) and the peers at W are there."""
    w = server_cores()
    for name in ("wait", "cores", "interference", "deploy", "connections"):
        rows = _rows(results, name)
        assert all(int(r["workers"]) >= 1 for r in rows), name
        names = {r["engine"] for r in rows}
        if w > 1:
            assert {f"{e} x{w}" for e in HYBRIDS} <= names, (name, names)
    peers = {r["engine"] for r in _rows(results, "cores")} - set(experiments.ENGINES)
    if w > 1:
        assert {f"{p} x{w}" for p in PEERS_AT_W} <= peers, peers


@pytest.mark.skipif(server_cores() < 2, reason="needs 2+ cores")
def test_cores_a_hybrid_is_judged_by_its_own_figures(results):
    """The cores law of the workers axis (model x W >= 0.75 x min(W, cores) x its one-process rate
    on one core) is judged on every hybrid, and the verdict follows from the row's own figures.
    Whether a loop x 2 reaches it is a benchmark figure, not asserted here: one 2 s quick run on
    this VM gave selectors x2 1.28x once (results/rigor, 5 rounds: 2.06x, held)."""
    rows = _rows(results, "cores")
    one = {r["engine"]: float(r["rps"]) for r in rows if r["server_cpus"] == "1" and r["rps"]}
    w = server_cores()
    for model in HYBRIDS:
        hybrid = next(r for r in rows if r["engine"] == f"{model} x{w}")
        assert int(hybrid["workers"]) == w
        want = float(re.search(r">= ([0-9.]+)x", hybrid["expected"]).group(1))
        ratio = float(hybrid["rps"]) / one[model]  # from the rounded CSV figures: within 0.01 of the row's own
        noted = float(re.search(r"([0-9.]+)x its one-process rate", hybrid["note"]).group(1))
        assert abs(noted - ratio) <= 0.01, (hybrid, one[model])
        if abs(ratio - want) > 0.01:  # at the bound itself the rounding decides: nothing to check
            assert hybrid["held"] == ("yes" if ratio >= want else "NO"), (hybrid, one[model])


def test_interference_of_a_hybrid_stalls_only_its_share(results):
    rows = [r for r in _rows(results, "interference") if r["engine"].endswith(f" x{server_cores()}")]
    for r in rows:
        assert "of probes stalled" in r["note"], r
        if r["users"] == "0":
            continue
        assert "k / W" in r["expected"], r
        if int(r["users"]) < int(r["workers"]):  # judged where it can fail
            assert r["held"] in ("yes", "NO"), r
        else:  # k >= W: every probe may stall, so the law cannot fail and is not judged
            assert r["held"] == "" and "not judged" in r["note"], r


def test_deploy_runs_every_deployment_at_one_rate(results):
    rows = _rows(results, "deploy")
    assert {r["engine"] for r in rows} >= set(experiments.ENGINES)
    assert len({r["expected"] for r in rows}) == 1  # one offered rate for all
    for r in rows:
        assert float(r["rps"]) > 0 and float(r["p99_ms"]) > 0, r


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2+ cores")
def test_cores_the_four_models_are_judged_by_their_own_figures(results):
    """processpool against >= 0.75 x cores x its one-core rate, the others against <= 1.25 x
    theirs: each verdict follows from the row's two figures (the figures themselves are the
    benchmark's: results/rigor)."""
    rows = {(r["engine"], r["server_cpus"]): r for r in _rows(results, "cores")}
    cpus = str(server_cores())
    for engine in experiments.ENGINES:
        many, single = rows[(engine, cpus)], rows[(engine, "1")]
        ratio = float(many["rps"]) / float(single["rps"])
        bound = float(re.search(r"([0-9.]+)x one core", many["expected"]).group(1))
        held = ratio >= bound if many["expected"].startswith(">=") else ratio <= bound
        if abs(ratio - bound) > 0.01:  # at the bound itself the CSV's rounding decides: nothing to check
            assert many["held"] == ("yes" if held else "NO"), (many, single)


def test_interference_blocks_the_loop(results):
    rows = [r for r in _rows(results, "interference") if r["engine"] == "selectors"]
    assert [r["users"] for r in rows] == ["0", "1", "2"]
    assert all(r["held"] == "yes" for r in rows[1:]), rows  # p99 >= half a /cpu once one runs
    assert float(rows[1]["p99_ms"]) > 2 * float(rows[0]["p99_ms"]), rows


def test_rounds_are_shuffled_repeats_with_an_a_a_control(tmp_path):
    """--repeats 2: every cell twice, a round and the seed in every row, the A/A twin in each
    round, and the report's control table pairing it with its original."""
    from loadtest.report import rounds, verdict

    assert experiments.main(["wait", "--quick", "--engines", "selectors", "--no-peers", "--workers", "1",
                             "--repeats", "2", "--seed", "7", "--duration", "1", "--results", str(tmp_path)]) == 0
    rows = _rows(tmp_path, "wait")
    assert {r["round"] for r in rows} == {"1", "2"} and {r["seed"] for r in rows} == {"7"}
    assert {r["engine"] for r in rows} == {"selectors", "selectors (A/A)"}
    assert len(rows) == 2 * 2 * 3  # rounds x configurations x levels
    assert all(r["noisy"] in ("yes", "no") and r["steal_pct"] != "" for r in rows)
    table = rounds.control_table(verdict.load_rounds(str(tmp_path)))
    assert len(table) == 3 and set(table["rounds"]) == {2}
    assert set(table["verdict"]) <= {"tie", "NOT A TIE"}
