"""loadtest/bench.py and loadtest/harness/generators.py: builders, parsers and command line, on recorded
wrk / h2load / httperf output (no servers)."""

from __future__ import annotations

import pytest

from loadtest import bench

from loadtest.harness import servers

from loadtest.harness import generators as tools

WRK = """Running 1s test @ http://127.0.0.1:8092/plaintext
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.69ms  464.73us   5.83ms   85.45%
    Req/Sec     1.49k   135.64     1.64k    72.73%
  Latency Distribution
     50%  850.00us
     75%    2.70ms
     90%    3.31ms
     99%    1.02s
  1632 requests in 1.10s, 223.26KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 17
Requests/sec:   1487.96
Transfer/sec:    203.55KB
"""

H2LOAD = """starting benchmark...
spawning thread #0: 2 total client(s). 200 total requests
Application protocol: h2c

finished in 206.92ms, 966.54 req/s, 43.56KB/s
requests: 200 total, 200 started, 198 done, 190 succeeded, 10 failed, 2 errored, 1 timeout
status codes: 190 2xx, 0 3xx, 5 4xx, 3 5xx
traffic: 9.01KB (9230) total, 1.08KB (1110) headers (space savings 95.13%), 2.54KB (2600) data
                     min         max         mean         sd        +/- sd
time for request:     1.72ms      9.56ms      4.01ms      1.03ms    85.50%
time for connect:      154us       351us       253us       139us   100.00%
"""


def test_parse_duration_ms():
    assert tools.parse_duration_ms("850.00us") == pytest.approx(0.85)
    assert tools.parse_duration_ms("2.5ms") == 2.5
    assert tools.parse_duration_ms("1.02s") == pytest.approx(1020)
    with pytest.raises(ValueError):
        tools.parse_duration_ms("fast")


def test_parse_wrk():
    r = tools.parse_wrk(WRK)
    assert r.rps == 1487.96 and r.requests == 1632 and r.duration_s == pytest.approx(1.10)
    assert r.p50_ms == pytest.approx(0.85) and r.p99_ms == pytest.approx(1020) and r.p95_ms is None
    assert r.mean_ms == pytest.approx(2.69) and r.max_ms == pytest.approx(5.83)  # the Latency line
    assert r.non2xx == 17 and r.failures == 5
    assert r.detail["socket_error_detail"] == "read 3, timeout 2"


def test_parse_wrk_without_errors_and_failure():
    clean = "\n".join(line for line in WRK.splitlines() if "errors" not in line and "Non-2xx" not in line)
    r = tools.parse_wrk(clean)
    assert (r.non2xx, r.failures) == (0, 0)
    with pytest.raises(tools.BenchError):
        tools.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_parse_wrk_with_the_lab_script_line():
    """WRK_LUA's line wins over the report: exact percentiles, p95 and p99.9, the window, the counts."""
    r = tools.parse_wrk(WRK + "lab-wrk: requests=120 duration_us=2000000 socket_errors=1 "
                              "status_errors=2 p50=1500 p90=2000 p95=2500 p99=9000 p999=12000 max=15000\n")
    assert (r.requests, r.duration_s, r.failures, r.non2xx) == (120, 2.0, 1, 2)
    assert (r.p50_ms, r.p95_ms, r.p99_ms, r.p999_ms, r.max_ms) == (1.5, 2.5, 9.0, 12.0, 15.0)
    assert "lab-wrk: requests=%d" in tools.WRK_LUA and "-s" in tools.wrk_command("http://h/", 4, 1, script="x.lua")


def test_only_2xx_counts_answers_below_400():
    r = tools.parse_wrk(WRK).only_2xx()
    assert r.rps == pytest.approx(1487.96 * (1632 - 17) / 1632) and r.detail["rps_all"] == 1487.96
    clean = tools.Result(rps=10.0, requests=5)
    assert clean.only_2xx() is clean


def test_parse_h2load():
    r = tools.parse_h2load(H2LOAD)
    assert r.rps == 966.54 and r.requests == 198 and r.detail["succeeded"] == 190
    assert (r.detail["failed"], r.failures, r.detail["timeout"], r.non2xx) == (10, 2, 1, 8)
    assert r.mean_ms == pytest.approx(4.01) and r.max_ms == pytest.approx(9.56) and r.p50_ms is None
    with pytest.raises(tools.BenchError):
        tools.parse_h2load("h2load: no such host")


def test_parse_h2load_percentiles_from_its_log(tmp_path):
    log = tmp_path / "h2load.tsv"
    log.write_text("".join(f"17953877324{i:05d}\t200\t{1000 * (i + 1)}\n" for i in range(10)))
    r = tools.parse_h2load(H2LOAD, str(log))
    assert (r.p50_ms, r.p90_ms, r.max_ms, r.detail["logged"]) == (5.0, 9.0, 10.0, 10)
    assert f"--log-file={log}" in tools.h2load_command("http://h/", 2, log_file=str(log))


HTTPERF = """httperf --hog --timeout=5 --client=0/1 --server=127.0.0.1 --port=8080 --uri=/plaintext --rate=200 \
--send-buffer=4096 --recv-buffer=16384 --num-conns=1000 --num-calls=1
Maximum connect burst length: 1

Total: connections 1000 requests 1000 replies 998 test-duration 4.996 s

Connection rate: 200.2 conn/s (5.0 ms/conn, <=3 concurrent connections)
Request rate: 200.2 req/s (5.0 ms/req)
Reply time [ms]: response 0.6 transfer 0.1
Reply status: 1xx=0 2xx=990 3xx=0 4xx=3 5xx=5
Errors: total 2 client-timo 2 socket-timo 0 connrefused 0 connreset 0
"""


def test_parse_httperf():
    r = tools.parse_httperf(HTTPERF)
    assert (r.rps, r.requests, r.duration_s, r.failures, r.non2xx) == (200.2, 998, 4.996, 2, 8)
    assert r.mean_ms == pytest.approx(0.7) and r.detail["connection_rate"] == 200.2
    with pytest.raises(tools.BenchError):
        tools.parse_httperf("httperf: connection refused")
    cmd = tools.httperf_command("127.0.0.1", 8080, "/plaintext", 200, 1000)
    assert cmd[:2] == ["httperf", "--hog"] and cmd[cmd.index("--rate") + 1] == "200"


def test_result_from_latencies():
    r = tools.Result.from_latencies([float(x) for x in range(100, 0, -1)], 2.0)
    assert (r.requests, r.rps, r.p50_ms, r.p99_ms, r.max_ms, r.mean_ms) == (100, 50.0, 50, 99, 100, 50.5)
    assert tools.percentile([], 50) is None


def test_command_line_filters():
    args = bench.build_parser().parse_args(["h1", "--engines", "selectors", "--peers", "none"])
    assert args.engines == "selectors" and args.duration == 10 and args.connections == 64
    specs = bench.server_specs(args, "/tmp")
    assert set(specs) >= set(bench.ENGINES) | set(bench.H1_PEERS) | set(bench.H2_PEERS)
    argv = specs["selectors"].argv(1234)
    assert argv[argv.index("--port") + 1] == "1234" and argv[argv.index("--engine") + 1] == "selectors"
    assert "--http" in specs["uvicorn-h11"].argv(1) and "h11" in specs["uvicorn-h11"].argv(1)
    assert servers.pinned(["wrk"], 1) == ["taskset", "-c", "1", "wrk"] and servers.pinned(["wrk"], None) == ["wrk"]


def test_peer_wsgi_app_answers_plaintext():
    from loadtest.harness.peers import plaintext_wsgi

    seen = []
    body = b"".join(plaintext_wsgi({}, lambda status, headers: seen.append((status, headers))))
    assert body == b"Hello, World!" and seen[0][0] == "200 OK"
    assert ("Content-Length", "13") in seen[0][1]
