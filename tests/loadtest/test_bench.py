"""loadtest/bench.py and tools.py: parsers and command line, on recorded wrk / h2load output (no servers)."""

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
    assert r["rps"] == 1487.96 and r["requests"] == 1632
    assert r["p50_ms"] == pytest.approx(0.85) and r["p99_ms"] == pytest.approx(1020)
    assert r["non2xx"] == 17 and r["socket_errors"] == 5
    assert r["socket_error_detail"] == "read 3, timeout 2"


def test_parse_wrk_without_errors_and_failure():
    clean = "\n".join(line for line in WRK.splitlines() if "errors" not in line and "Non-2xx" not in line)
    r = tools.parse_wrk(clean)
    assert (r["non2xx"], r["socket_errors"]) == (0, 0)
    with pytest.raises(tools.BenchError):
        tools.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_parse_h2load():
    r = tools.parse_h2load(H2LOAD)
    assert r["rps"] == 966.54 and r["requests"] == 198 and r["succeeded"] == 190
    assert (r["failed"], r["errored"], r["timeout"], r["non2xx"]) == (10, 2, 1, 8)
    assert r["mean_ms"] == pytest.approx(4.01) and r["max_ms"] == pytest.approx(9.56)
    with pytest.raises(tools.BenchError):
        tools.parse_h2load("h2load: no such host")


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
