"""``--workers 2`` on every engine: N copies under engines/supervisor.py, over real sockets.

Served (HTTP/1.1, h2c, TLS with ALPN h2, by independent clients), a killed worker replaced under
load, SIGTERM with requests in flight in both workers (every one answered, none reset), the
connection limit and ``/_metrics`` for the whole server, and the usage errors. Which worker holds
what is read from the supervisor's shared board (``Board.of_process``), never guessed from time.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import ssl
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from conftest import ROOT, await_workers, worker_pids
from engines.supervisor import Board
from rawhttp import RawClient
from test_reliability import _Load, refused, timed_get

GET = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"
CA = os.path.join(ROOT, ".certs", "dev-ca.pem")


def poll(condition, timeout: float = 15.0, what: str = "condition"):
    """Poll ``condition()`` every 20 ms until it returns a true value (returned).

    Raises:
        AssertionError: not within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_protocol_is_served(engine, server_factory):
    """HTTP/1.1, h2c (prior knowledge) and TLS (ALPN h2 and http/1.1) on two workers."""
    srv = server_factory(engine, "--workers", "2", "--tls-port", "0")
    assert len(worker_pids(srv)) == 2
    assert_every_protocol(srv)


def assert_every_protocol(srv) -> None:
    """``srv`` (started with ``--tls-port 0``) answers /plaintext over HTTP/1.1, h2c (prior
    knowledge), and TLS with ALPN h2 and http/1.1, each by httpx."""
    with httpx.Client(http1=True, http2=False) as c:
        r = c.get(f"http://127.0.0.1:{srv.port}/plaintext")
        assert (r.status_code, r.http_version, r.text) == (200, "HTTP/1.1", "Hello, World!")
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(f"http://127.0.0.1:{srv.port}/plaintext")
        assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "Hello, World!")
    trust = ssl.create_default_context(cafile=CA)
    with httpx.Client(http2=True, verify=trust) as c:
        r = c.get(f"https://127.0.0.1:{srv.tls_port}/plaintext")
        assert (r.status_code, r.http_version) == (200, "HTTP/2")
    with httpx.Client(http2=False, verify=trust) as c:
        r = c.get(f"https://127.0.0.1:{srv.tls_port}/plaintext")
        assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


def test_killed_worker_is_replaced_under_load(engine, server_factory):
    """SIGKILL one of two workers while four clients send requests: it is replaced, only the
    connections it held may fail, and the server keeps answering."""
    srv = server_factory(engine, "--workers", "2")
    pids = await_workers(srv, 2)
    load = _Load(srv.port, 4)
    try:
        poll(lambda: load.ok >= 50, what="50 answers before the kill")
        os.kill(pids[0], signal.SIGKILL)
        now = await_workers(srv, 2, exclude=(pids[0],))
        assert pids[0] not in now
        before = load.ok
        poll(lambda: load.ok >= before + 100, what="100 answers after the kill")
    finally:
        load.finish()
    assert load.failed <= 4, load.failed  # at most the connections the dead worker held
    for _ in range(10):
        assert timed_get(srv.port)[0] == 200
    assert srv.proc.poll() is None


def _answer(port: int, path: bytes, out: dict, key: int, ready) -> None:
    """Send one request on a new connection; record its status line, or how it failed."""
    try:
        with RawClient(port, timeout=30) as c:
            c.send(GET % path)
            ready(key)
            r = c.read_response()
            out[key] = (r.status, r.header("retry-after"), r.header("connection"))
    except (ConnectionResetError, BrokenPipeError) as exc:
        out[key] = ("reset", type(exc).__name__)
    except (EOFError, OSError) as exc:
        out[key] = ("no answer", repr(exc))


def test_sigterm_with_requests_in_flight_in_both_workers_answers_every_one(engine, server_factory):
    """20 clients' ``/io?ms=1000`` spread over two workers (``--reuse-port``: the kernel hashes
    them over both; which worker holds which is read from the board), then SIGTERM: every one is
    answered (200, or 503 + Retry-After + Connection: close at the drain timeout), none reset,
    and the server exits 0."""
    srv = server_factory(engine, "--workers", "2", "--reuse-port")
    await_workers(srv, 2)
    board = Board.of_process(srv.proc.pid)
    # with --reuse-port each worker binds its own listener after its fork: connect once both serve
    poll(lambda: all(board.read(i) is not None for i in range(board.size)), what="both workers serving")
    answers: dict[int, tuple] = {}
    sent: set[int] = set()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        for i in range(20):
            pool.submit(_answer, srv.port, b"/io?ms=1000", answers, i, sent.add)
        # processpool serves one request at a time per worker: 2 in flight, the rest queued
        want = 2 if engine == "processpool" else 20
        poll(lambda: len(sent) == 20 and sum(board.in_flight) >= want and min(board.in_flight) >= 1,
             what=f"{want} handlers in flight in both workers")
        srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    assert len(answers) == 20
    for key, got in answers.items():
        assert got[0] in (200, 503), (key, got)
        if got[0] == 503:
            assert got[1] is not None and got[2] == "close", got
    if engine != "processpool":  # 1 s of work inside a 10 s drain: all served
        assert all(got[0] == 200 for got in answers.values()), answers


def test_a_worker_stuck_in_cpu_work_leaves_new_connections_to_the_others(engine, server_factory):
    """On the default shared accept queue: while one worker runs CPU-bound handlers (six
    pipelined ``/cpu?n=10000000``, several seconds of bytecode one after another), 20 new
    connections are all served, and (single-threaded workers) before the stuck connection has
    had all its answers: no clock is read, the answers are counted. A threadpool worker stuck in
    /cpu is one thread: its process still accepts and serves, more slowly (its threads queue for
    the GIL), so there only "all served" is checked."""
    srv = server_factory(engine, "--workers", "2")
    await_workers(srv, 2)
    board = Board.of_process(srv.proc.pid)
    pipelined = 6
    with RawClient(srv.port, timeout=60) as stuck:
        stuck.send((GET % b"/cpu?n=10000000") * pipelined)
        poll(lambda: sum(board.in_flight) >= 1, what="the /cpu requests in their handler")
        for _ in range(20):
            assert timed_get(srv.port)[0] == 200
        arrived = b""
        stuck.sock.setblocking(False)  # (a socket timeout would wait in poll() before each recv)
        while True:
            try:
                chunk = stuck.sock.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            arrived += chunk
        stuck.sock.settimeout(60)
        stuck.buf = arrived
        if engine != "threadpool":
            assert arrived.count(b"HTTP/1.1 200") < pipelined, "the stuck worker finished before the others served 20"
        for _ in range(pipelined):
            assert stuck.read_response().status == 200


def test_max_connections_holds_for_the_whole_server(engine, server_factory):
    """``--max-connections 10`` with two workers: 10 open connections held by both workers
    together, and the 11th is refused (503 + Connection: close)."""
    srv = server_factory(engine, "--workers", "2", "--reuse-port", "--max-connections", "10")
    await_workers(srv, 2)
    board = Board.of_process(srv.proc.pid)
    # with --reuse-port each worker binds its own listener after its fork: connect once both serve
    poll(lambda: all(board.read(i) is not None for i in range(board.size)), what="both workers serving")
    held = []
    try:
        for _ in range(10):
            c = RawClient(srv.port)
            c.send(GET % b"/plaintext")
            assert c.read_response().status == 200
            held.append(c)
        poll(lambda: sum(board.connections) == 10, what="10 connections on the board")
        assert min(board.connections) >= 1, list(board.connections)  # both workers hold some
        for _ in range(3):
            assert refused(srv.port)
    finally:
        for c in held:
            c.close()
    poll(lambda: sum(board.connections) == 0, what="the connections closed")
    assert timed_get(srv.port)[0] == 200


def test_metrics_report_the_whole_server(engine, server_factory):
    """``/_metrics`` answered by either worker sums both: totals equal the sum of the per-process
    lines, and the route's merged percentiles lie within its max."""
    srv = server_factory(engine, "--workers", "2", "--reuse-port")
    pids = await_workers(srv, 2)
    for _ in range(40):
        assert timed_get(srv.port)[0] == 200

    def both_published():
        with RawClient(srv.port) as c:
            c.send(b"GET /_metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            m = json.loads(c.read_response().body)
        served = m["routes"].get("/plaintext", {}).get("requests", 0)
        return m if served == 40 and len(m["processes"]) == 2 else None

    m = poll(both_published, what="both workers' figures in /_metrics")
    assert m["workers"] == 2 and sorted(p["pid"] for p in m["processes"]) == sorted(pids)
    assert all(p["requests"] > 0 for p in m["processes"]), m["processes"]  # both served some
    for key in ("requests", "errors", "client_errors", "connections"):
        assert m[key] == sum(p[key] for p in m["processes"]), key
    lat = m["routes"]["/plaintext"]["latency_ms"]
    assert lat["samples"] == 40 and 0 < lat["p50"] <= lat["p99"] <= lat["max"], lat


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_worker_count_is_a_usage_error(value):
    """``--workers 0``, a negative count or a non-number: exit 2 with a message, no traceback."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "start_server"), "--workers", value, "--port", "0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "--workers wants a whole number >= 1 or 'auto'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_threadpool_workers_warns_and_names_threads():
    """The old meaning of ``--workers`` on threadpool (its pool size): a warning on stderr that
    names ``--threads``; ``--workers`` now counts processes."""
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "start_server"), "--engine", "threadpool",
                             "--workers", "2", "--port", "0", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert "2 worker processes, threadpool with 32 threads each" in line, line
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "--threads 2" in err and "--workers now counts processes" in err, err


def test_no_option_starts_selectors_in_one_process():
    """``./start_server`` with no option but the port: the selectors engine, one process."""
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "start_server"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert "selectors engine" in line and "worker processes" not in line, line
        assert psutil.Process(proc.pid).children() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_worker_that_keeps_dying_at_start_up_is_restarted_with_back_off(tmp_path):
    """Kill a worker, then each replacement as soon as it appears (four kills): the supervisor
    logs each exit within 2 s of a start with a doubling delay (0.1, 0.2, 0.4 s, ...) and says it
    is backing off; once left alone, the replacement stays and the server answers."""
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "start_server"), "--engine", "selectors",
                                 "--workers", "2", "--port", "0", "--log-level", "WARNING",
                                 "--data-dir", str(tmp_path / "data")],
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    try:
        port = int(proc.stdout.readline().split("127.0.0.1:")[1].split()[0])
        parent = psutil.Process(proc.pid)
        seen = set(poll(lambda: [c.pid for c in parent.children()] if len(parent.children()) == 2 else None))
        victim = min(seen)
        for _ in range(4):
            os.kill(victim, signal.SIGKILL)
            seen.add(victim)
            victim = poll(lambda: next((c.pid for c in parent.children() if c.pid not in seen), None),
                          what="a replacement worker")
        poll(lambda: log.read_text().count("backing off") >= 3, what="three back-off lines")
        text = log.read_text()
        assert "next start in 0.1 s" in text and "next start in 0.2 s" in text and "next start in 0.4 s" in text, text
        assert "3 time(s) in a row" in text and "worker" in text
        with RawClient(port) as c:
            c.send(GET % b"/plaintext")
            assert c.read_response().status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()
    assert proc.returncode == 0
