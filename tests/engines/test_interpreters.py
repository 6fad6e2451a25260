"""``--workers 2 --worker-kind interpreter``: the copies of every engine in subinterpreters of one
process (Python 3.14, engines/interpreters.py), over real sockets, with the 3.14 of
``scripts/python3.14`` (the ``python314`` fixture; CI provisions it, LAB_REQUIRE_PY314=1).

Served (HTTP/1.1, h2c, TLS with ALPN h2 and http/1.1, by httpx), a worker whose interpreter fails
replaced, SIGTERM with requests in flight in both workers (every one answered), /cpu served by both
workers (their rate against one is the cores experiment's, not a test's), and the usage errors (this Python, --loop uvloop). Which worker
holds what is read from the supervisor's board (``Board.of_process``), never guessed from time.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import ssl
import subprocess
import sys

import httpx
import pytest

from conftest import ROOT, published, start_server
from engines.supervisor import Board
from test_workers import _answer, assert_every_protocol, poll

CA = os.path.join(ROOT, ".certs", "dev-ca.pem")
KIND = ("--worker-kind", "interpreter")


def _serve(python314, engine, tmp_path, *args, **kw):
    return start_server(engine, "--workers", "2", *KIND, *args, tmp_path=tmp_path, python=python314, **kw)


def test_every_protocol_is_served(engine, python314, tmp_path, started):
    """HTTP/1.1, h2c (prior knowledge) and TLS (ALPN h2 and http/1.1) from two interpreter workers;
    ``/_metrics`` counts both."""
    srv = _serve(python314, engine, tmp_path, "--tls-port", "0")
    started.append(srv)
    board = Board.of_process(srv.proc.pid)
    assert board.size == 2
    poll(lambda: published(board), what="both workers serving")
    assert_every_protocol(srv)
    trust = ssl.create_default_context(cafile=CA)
    with httpx.Client(http2=False, verify=trust) as c:
        metrics = c.get(f"https://127.0.0.1:{srv.tls_port}/_metrics").json()
    assert metrics["workers"] == 2 and len(metrics["processes"]) == 2
    assert any("2 worker interpreters" in line for line in srv.lines)


def test_a_failed_worker_is_replaced(python314, tmp_path, started):
    """The first worker start raises inside its interpreter (``LAB_WORKER_FAULT=start:1``): the
    supervisor logs the traceback, starts a new one after its back-off, and both serve."""
    log = tmp_path / "server.log"
    env = {**os.environ, "LAB_WORKER_FAULT": "start:1"}
    with open(log, "w") as err:
        srv = _serve(python314, "asyncio", tmp_path, env=env, stderr=err)
        started.append(srv)
        board = Board.of_process(srv.proc.pid)
        poll(lambda: published(board), what="both workers serving after the replacement")
        with httpx.Client() as c:
            assert c.get(f"http://127.0.0.1:{srv.port}/plaintext").status_code == 200
        assert srv.stop() == 0
    text = log.read_text()
    assert "injected fault" in text and "RuntimeError" in text, text
    assert re.search(r"worker i1 exited \(raised RuntimeError: .*\) .* backing off: next start in 0\.1 s", text), text


@pytest.mark.parametrize("engine", ["threadpool", "selectors", "asyncio"])
def test_sigterm_with_requests_in_flight_in_both_workers_answers_every_one(engine, python314, tmp_path, started):
    """20 clients' ``/io?ms=1000`` over two interpreter workers (``--reuse-port``; the board says
    both hold some), then SIGTERM to the process: the stop reaches each interpreter through its
    stop descriptor, every request is answered 200, and the server exits 0."""
    srv = _serve(python314, engine, tmp_path, "--reuse-port")
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


def test_two_interpreter_workers_both_run_cpu_work(python314, tmp_path, started):
    """/cpu (pure-Python work under each worker's own GIL) from ``wrk -c8`` against two interpreter
    workers: both serve /cpu requests (the whole server's /_metrics counts them per worker). Whether
    they run on two cores at once is a throughput figure: the cores experiment measures it
    (``MODEL x2 (interpreters)`` against ``MODEL x1 (interpreters)``, paired over rounds)."""
    srv = start_server("selectors", "--workers", "2", *KIND, tmp_path=tmp_path, python=python314)
    started.append(srv)
    board = Board.of_process(srv.proc.pid)
    poll(lambda: published(board), what="the workers serving")
    subprocess.run(["wrk", "-t2", "-c8", "-d2s", f"http://127.0.0.1:{srv.port}/cpu"],
                   capture_output=True, text=True, timeout=30, check=True)

    def per_worker() -> list[int] | None:
        with httpx.Client() as c:
            lines = c.get(f"http://127.0.0.1:{srv.port}/_metrics").json()["processes"]
        counts = [p["requests"] for p in lines]
        return counts if len(counts) == 2 and min(counts) > 0 else None

    assert poll(per_worker, what="both interpreter workers counted /cpu requests")


def test_this_python_is_refused_clearly_below_3_14(tmp_path):
    """On Python < 3.14 ``--worker-kind interpreter`` is a usage error (exit 2) naming what it
    needs, never a traceback."""
    if sys.version_info >= (3, 14):
        pytest.skip("this Python is 3.14: interpreter workers run")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "start_server"), "--workers", "2", *KIND,
                          "--port", "0"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 2
    assert "needs Python 3.14" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_uvloop_is_refused_in_interpreter_workers(python314):
    """uvloop cannot load in a subinterpreter: ``--loop uvloop`` with interpreter workers is a usage
    error (exit 2)."""
    out = subprocess.run([python314, os.path.join(ROOT, "start_server"), "--engine", "asyncio", "--loop", "uvloop",
                          *KIND, "--port", "0"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2 and "uvloop" in out.stderr, out.stderr


def test_postgresql_is_refused_in_interpreter_workers(python314):
    """psycopg does not load in a subinterpreter: ``--db postgresql://...`` with interpreter workers
    is a usage error (exit 2) naming the way out, never a worker that drops its connections."""
    out = subprocess.run([python314, os.path.join(ROOT, "start_server"), "--workers", "2", *KIND, "--port", "0",
                          "--db", "postgresql://postgres@127.0.0.1:1/lab"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 2 and "--worker-kind process or thread" in out.stderr, out.stderr
