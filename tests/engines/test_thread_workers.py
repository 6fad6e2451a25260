"""``--workers N --worker-kind thread``: the copies of every engine in threads of one process
(engines/inprocess.py), over real sockets, under each Python of the ``server_python`` axis (this
one, Debian's 3.14 and the free-threaded 3.14t of ``scripts/python3.14t``; CI requires both with
LAB_REQUIRE_PY314=1 and LAB_REQUIRE_PY314T=1).

Served (HTTP/1.1, h2c, TLS with ALPN h2 and http/1.1), ``/_metrics`` naming the GIL's state, a
worker that raises replaced, SIGTERM with requests in flight in both workers (every one answered,
exit 0), and exactness without a GIL: 8 pool threads serve 20,000 requests and ``/_metrics`` counts
exactly 20,000. Which worker holds what is read from the supervisor's board, never guessed from time.
Whether the threads run /cpu in parallel is a throughput figure, so it lives in the benchmark
(``python -m loadtest experiment cores --python scripts/python3.14t``: thread workers x1 and x2,
threadpool ``--threads`` 1, 2, 4, judged by paired ratios over rounds), not here.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import subprocess

import httpx
import pytest

from conftest import published, start_server
from engines.supervisor import Board
from test_workers import _answer, assert_every_protocol, poll

KIND = ("--worker-kind", "thread")


def _expected_gil(metrics: dict) -> str:
    """What ``/_metrics`` must say: a free-threaded build keeps its GIL off with everything the lab
    imports (unless PYTHON_GIL=1 was asked for); a GIL build has it on."""
    python = metrics["python"]
    if python["free_threading"] and python["PYTHON_GIL"] != "1":
        return "disabled"
    return "enabled"


def test_every_protocol_is_served(engine, server_python, tmp_path, started):
    """HTTP/1.1, h2c (prior knowledge) and TLS (ALPN h2 and http/1.1) from two thread workers of one
    process; ``/_metrics`` counts both, names them threads of one pid, and gives the GIL's state,
    as the start-up line does."""
    srv = start_server(engine, "--workers", "2", *KIND, "--tls-port", "0", tmp_path=tmp_path,
                       python=server_python)
    started.append(srv)
    board = Board.of_process(srv.proc.pid)
    assert board.size == 2
    poll(lambda: published(board), what="both workers serving")
    assert_every_protocol(srv)
    with httpx.Client() as c:
        metrics = c.get(f"http://127.0.0.1:{srv.port}/_metrics").json()
    assert metrics["workers"] == 2 and len(metrics["processes"]) == 2
    assert {p["worker_kind"] for p in metrics["processes"]} == {"thread"}
    assert {p["pid"] for p in metrics["processes"]} == {srv.proc.pid}
    assert metrics["gil"] == _expected_gil(metrics), metrics["python"]
    assert any("2 worker threads" in line and f"gil: {metrics['gil']}" in line for line in srv.lines), srv.lines


def test_a_worker_that_raises_is_logged_and_replaced(server_python, tmp_path, started):
    """The first worker start raises (``LAB_WORKER_FAULT=start:1``): the supervisor logs the
    traceback, starts a new thread after its back-off, and both serve; SIGTERM then exits 0."""
    log = tmp_path / "server.log"
    env = {**os.environ, "LAB_WORKER_FAULT": "start:1"}
    with open(log, "w") as err:
        srv = start_server("selectors", "--workers", "2", *KIND, tmp_path=tmp_path, python=server_python,
                           env=env, stderr=err)
        started.append(srv)
        board = Board.of_process(srv.proc.pid)
        poll(lambda: published(board), what="both workers serving after the replacement")
        with httpx.Client() as c:
            assert c.get(f"http://127.0.0.1:{srv.port}/plaintext").status_code == 200
        assert srv.stop() == 0
    text = log.read_text()
    assert "injected fault" in text and "Traceback" in text, text
    assert re.search(r"worker t1 exited \(raised RuntimeError: .*\) .* backing off: next start in 0\.1 s", text), text


@pytest.mark.parametrize("engine", ["threadpool", "selectors", "asyncio"])
def test_sigterm_with_requests_in_flight_in_both_workers_answers_every_one(engine, server_python, tmp_path,
                                                                            started):
    """20 clients' ``/io?ms=1000`` over two thread workers (``--reuse-port``; the board says both
    hold some), then SIGTERM to the process: each thread's engine drains through its stop
    descriptor, every request is answered 200, and the server exits 0."""
    srv = start_server(engine, "--workers", "2", *KIND, "--reuse-port", tmp_path=tmp_path,
                       python=server_python)
    started.append(srv)
    board = Board.of_process(srv.proc.pid)
    poll(lambda: published(board), what="both workers serving")
    answers: dict[int, tuple] = {}
    sent: set[int] = set()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        for i in range(20):
            pool.submit(_answer, srv.port, b"/io?ms=1000", answers, i, sent.add)
        poll(lambda: len(sent) == 20 and sum(board.in_flight) == 20 and min(board.in_flight) >= 1,
             what="20 handlers in flight in both workers")
        srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    assert sorted(answers) == list(range(20))
    assert all(got[0] == 200 for got in answers.values()), answers


@pytest.mark.parametrize("extra", [(), ("--workers", "2", *KIND)], ids=["one-process", "2-thread-workers"])
def test_every_request_is_counted_exactly(extra, server_python, tmp_path, started):
    """8 pool threads (threadpool ``--threads 8``; and two thread workers of 8 each) serve 20,000
    requests from ``h2load --h1 -n 20000 -c 16`` (a bounded client): ``/_metrics`` counts exactly
    20,000 for the route, every one 200, and its latency histogram holds 20,000 samples. Without a
    GIL the threads update the counters in parallel: a lost update would show here."""
    srv = start_server("threadpool", "--threads", "8", *extra, tmp_path=tmp_path, python=server_python)
    started.append(srv)
    if extra:
        board = Board.of_process(srv.proc.pid)
        poll(lambda: published(board), what="both workers serving")
    out = subprocess.run(["h2load", "--h1", "-n", "20000", "-c", "16", "-t", "2",
                          f"http://127.0.0.1:{srv.port}/plaintext"],
                         capture_output=True, text=True, timeout=120)
    assert re.search(r"requests: 20000 total, 20000 started, 20000 done, 20000 succeeded", out.stdout), out.stdout

    def route() -> dict | None:
        with httpx.Client() as c:
            got = c.get(f"http://127.0.0.1:{srv.port}/_metrics").json()["routes"].get("/plaintext")
        return got if got and got["requests"] >= 20000 else None

    # h2load counts a response when it arrives; the server counts it just after sending it, and
    # thread workers publish to the board twice a second: poll until all are in, then check exactness.
    got = poll(route, what="20,000 requests counted")
    assert got["requests"] == 20000 and got["statuses"] == {"200": 20000}, got
    assert got["latency_ms"]["samples"] == 20000, got


def test_every_answer_is_its_own_request_s(engine, server_python, tmp_path, started):
    """16 clients, each on its own keep-alive connection, send 150 ``GET /echo/cJ-rI`` at once to two
    thread workers: every answer is the text of its own request. Loops in threads of one process
    share what is module-level; a read buffer shared by two loops (asyncio's once was) lets one
    loop's read overwrite the bytes another is parsing, and on 3.14t reset connections."""
    import http.client

    srv = start_server(engine, "--workers", "2", *KIND, tmp_path=tmp_path, python=server_python)
    started.append(srv)
    board = Board.of_process(srv.proc.pid)
    poll(lambda: published(board), what="both workers serving")

    def client(j: int) -> list[str]:
        wrong = []
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            for i in range(150):
                conn.request("GET", f"/echo/c{j}-r{i}")
                response = conn.getresponse()
                body = response.read().decode()
                if response.status != 200 or body != f"c{j}-r{i}":
                    wrong.append(f"c{j}-r{i}: {response.status} {body[:40]!r}")
        finally:
            conn.close()
        return wrong

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        wrong = [w for got in pool.map(client, range(16)) for w in got]
    assert wrong == []


def test_each_asyncio_loop_has_its_own_read_buffer():
    """Two asyncio engines of one process (two thread workers) read into two buffers, not one."""
    from engines.asyncioloop import AsyncioEngine
    from engines.config import ServerConfig

    one, two = (AsyncioEngine(object(), ServerConfig(), []) for _ in range(2))
    assert one.read_buffer.obj is not two.read_buffer.obj
