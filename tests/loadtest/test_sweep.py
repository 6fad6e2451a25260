"""loadtest/experiments/sweep.py, measure.py, workloads.py and the ``python -m loadtest`` dispatcher, without servers."""

from __future__ import annotations

import csv
import random

import pytest

from loadtest import __main__ as cli
from loadtest.harness import measure
from loadtest.experiments import sweep
from loadtest.users import workloads
from loadtest.harness import generators
from loadtest.harness.generators import BenchError

LOCUST_CSV = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/io,36,1,101.7,103.3,101.7,112.19,14.0,38.18,0.0,100,100,100,100,100,110,110,110,110,110,110
,Aggregated,36,1,101.7,103.3,101.7,112.19,14.0,38.18,0.0,100,100,100,100,105,110,110,111,112,112,112
"""


def test_parse_locust_stats(tmp_path):
    (tmp_path / "run_stats.csv").write_text(LOCUST_CSV)
    st = generators.parse_locust(str(tmp_path / "run"))
    assert (st.requests, st.failures, st.rps) == (36, 1, 38.18)
    assert (st.p50_ms, st.p90_ms, st.p95_ms, st.p99_ms, st.p999_ms, st.max_ms) == (100, 105, 110, 111, 112, 112.19)
    # a closed-loop run's open-loop summary does not replace locust's own figures
    (tmp_path / "run_openloop.json").write_text('{"mode": "closed", "achieved_rps": 1.0}')
    assert generators.parse_locust(str(tmp_path / "run")).rps == 38.18
    (tmp_path / "run_openloop.json").write_text('{"mode": "open", "achieved_rps": 99.5, "requests": 995, '
                                               '"p99_ms": 4.0, "late": 3}')
    op = generators.parse_locust(str(tmp_path / "run"))
    assert (op.rps, op.requests, op.p99_ms, op.detail["late"]) == (99.5, 995, 4.0, 3)
    with pytest.raises(BenchError):
        generators.parse_locust(str(tmp_path / "missing"))


def test_sweep_run_row_counts_error_statuses_as_failures():
    run = measure.SweepRun(generators.Result(rps=10.0, requests=100, failures=1, non2xx=2, p50_ms=1.23456),
                           window_s=10.0)
    row = run.row()
    assert (row["requests"], row["failures"], row["p50_ms"], row["duration_s"]) == (100, 3, 1.235, 10.0)


def _args(*argv: str):
    return sweep.build_parser().parse_args(list(argv))


def test_plan_orders_rounds_and_skips_what_cannot_run():
    runs, notes = sweep.plan(_args("--engines", "selectors,uvicorn-httptools+app", "--protocols", "h1,h2c", "--workloads",
                                   "io", "--users", "1,10", "--repeat", "2", "--streams", "4"))
    assert [r.repeat for r in runs] == [0] * 6 + [1] * 6
    assert {(r.engine, r.protocol) for r in runs} == {("selectors", "h1"), ("selectors", "h2c"), ("uvicorn-httptools+app", "h1")}
    assert {r.streams for r in runs if r.protocol == "h1"} == {1} and {r.streams for r in runs if r.protocol == "h2c"} == {4}
    assert notes == ["skipped uvicorn-httptools+app h2c: uvicorn speaks HTTP/1.1 only"]
    runs, notes = sweep.plan(_args("--engines", "asyncio", "--protocols", "h1,h2", "--tool", "wrk"))
    assert {r.protocol for r in runs} == {"h1"} and "wrk" in notes[0]
    for bad in (("--engines", "nginx"), ("--users", "0"), ("--workloads", "video")):
        with pytest.raises(sweep.SweepError):
            sweep.plan(_args(*bad))


def test_default_sweep_is_small():
    runs, _ = sweep.plan(_args())
    args = _args()
    assert len(runs) * (args.duration + args.warmup + 5) < 8 * 60  # seconds, with start/stop overheads


def test_server_argv(tmp_path):
    spec = sweep.RunSpec("threadpool", "h2", "io", 32, 1, 0)
    argv = sweep.server_argv(spec, 1234, _args("--workers", "8"), str(tmp_path))
    assert argv[argv.index("--engine") + 1] == "threadpool" and argv[argv.index("--threads") + 1] == "8"
    assert "--tls" in argv and argv[argv.index("--port") + 1] == "1234"
    argv = sweep.server_argv(sweep.RunSpec("selectors", "h1", "io", 1, 1, 0), 1, _args("--workers", "8"), "d")
    assert "--workers" not in argv and "--tls" not in argv
    assert "app.asgi:create" in sweep.server_argv(sweep.RunSpec("uvicorn-httptools+app", "h1", "io", 1, 1, 0), 1, _args(), "d")


def test_summary_csv_columns_and_append(tmp_path):
    assert sweep.SUMMARY_COLUMNS[:7] == ["run_id", "engine", "protocol", "workload", "users", "streams", "repeat"]
    path = tmp_path / "summary.csv"
    sweep.append_row(str(path), {"run_id": "a", "rps": 1.5, "p50_ms": None, "_notes": ["x"]})
    sweep.append_row(str(path), {"run_id": "b"})
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == sweep.SUMMARY_COLUMNS and [r[0] for r in rows[1:]] == ["a", "b"]
    sweep._check_summary(str(path))
    path.write_text("run_id,engine\n")
    with pytest.raises(sweep.SweepError):
        sweep._check_summary(str(path))


def test_workloads():
    w = workloads.Workload("mixed", random.Random(1))
    assert w.needs_index
    w.set_index('<link href="/static/a.css"><img src="/static/b.png"><a href="/other">')
    seen = {w.next() for _ in range(200)}
    assert seen == {("/", "/"), ("/plaintext", "/plaintext"), ("/static/a.css", "/static/{path}"),
                    ("/static/b.png", "/static/{path}")}
    assert workloads.Workload("io").next() == ("/io?ms=100", "/io")
    assert workloads.Workload("echo").next()[1] == "/echo/{text}"
    assert not workloads.Workload("cpu").needs_index
    assert workloads.primary_path("io") == "/io?ms=100"
    assert workloads.is_success(304) and not workloads.is_success(503)
    with pytest.raises(ValueError):
        workloads.Workload("video")


def test_cli_dispatch(capsys, monkeypatch):
    assert cli.main([]) == 2 and "sweep" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    called = {}
    monkeypatch.setattr(sweep, "main", lambda argv: called.setdefault("argv", argv) and 0)
    assert cli.main(["sweep", "--engines", "selectors"]) == 0 and called["argv"] == ["--engines", "selectors"]
