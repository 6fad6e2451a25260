"""HTTP/1.1 over real sockets, the same suite on every engine (``server`` is parametrized)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest

from rawhttp import RawClient, exchange, wait_in_flight

GET = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def get(port: int, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_index_and_static(server):
    status, headers, body = get(server.port, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"<html" in body.lower()
    assert headers["server"] and headers["date"].endswith("GMT")
    status, headers, body = get(server.port, "/static/style.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert int(headers["content-length"]) == len(body)


def test_plaintext_json_echo(server):
    assert get(server.port, "/plaintext")[2] == b"Hello, World!"
    assert json.loads(get(server.port, "/json")[2]) == {"message": "Hello, World!"}
    assert get(server.port, "/echo/hi%20there")[2] == b"hi there"
    assert get(server.port, "/user-agent", {"User-Agent": "lab-test/1"})[2] == b"lab-test/1"


def test_large_file_intact(server):
    status, headers, body = get(server.port, "/static/1mb.bin")
    assert status == 200 and len(body) == 1024 * 1024
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "www", "static", "1mb.bin"), "rb") as f:
        assert body == f.read()


def test_static_files_then_keep_alive(server):
    """Static files go out with sendfile on plain TCP: full, ranged and pipelined responses
    keep their framing, and the connection serves the next request after each."""
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "www", "static", "1mb.bin"), "rb") as f:
        blob = f.read()
    with RawClient(server.port) as c:
        c.send(GET % b"/static/1mb.bin" + GET % b"/plaintext")
        first = c.read_response()
        assert first.status == 200 and first.body == blob
        assert c.read_response().body == b"Hello, World!"
        c.send(b"GET /static/1mb.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\n\r\n")
        part = c.read_response()
        assert part.status == 206 and part.body == blob[1000:2000]
        c.send(b"HEAD /static/1mb.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head=True)
        assert head.status == 200 and head.header("content-length") == str(len(blob))
        c.send(GET % b"/plaintext")
        assert c.read_response().body == b"Hello, World!"


def test_not_found_and_traversal(server):
    assert get(server.port, "/nope")[0] == 404
    for path in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc%2fpasswd"):
        status, _, body = get(server.port, path)
        assert status == 404, path
        assert b"root:" not in body


def test_keep_alive_reuses_connection(server):
    with RawClient(server.port) as c:
        for _ in range(3):
            c.send(GET % b"/plaintext")
            r = c.read_response()
            assert r.status == 200 and r.body == b"Hello, World!"


def test_pipelined_requests_answered_in_order(server):
    data = b"".join(GET % p for p in (b"/echo/one", b"/io?ms=50", b"/echo/three"))
    responses = exchange(server.port, data, count=3)
    assert [r.body for r in responses] == [b"one", b"waited 50 ms\n", b"three"]


def test_http10_closes(server):
    with RawClient(server.port) as c:
        c.send(b"GET /plaintext HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"Hello, World!"
        assert c.closed_by_peer()


def test_connection_close_honoured(server):
    with RawClient(server.port) as c:
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


def test_head_has_no_body(server):
    with RawClient(server.port) as c:
        c.send(b"HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(head=True)
        assert r.status == 200 and r.header("content-length") == "13"
        c.send(GET % b"/echo/after")
        assert c.read_response().body == b"after"


def test_post_file_content_length_and_chunked(server):
    with RawClient(server.port) as c:
        c.send(b"POST /files/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert c.read_response().status == 201
        c.send(b"POST /files/b.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
        assert c.read_response().status in (200, 201)
        c.send(GET % b"/files/b.txt")
        assert c.read_response().body == b"abcde"
        c.send(GET % b"/files/a.txt")
        assert c.read_response().body == b"hello"


def test_expect_100_continue(server):
    with RawClient(server.port) as c:
        c.send(b"POST /files/c.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 100
        c.send(b"xyz")
        assert c.read_response().status == 201


def test_expect_100_not_sent_when_body_unwanted(server):
    with RawClient(server.port) as c:
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"Hello, World!"


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST /files/z HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"GET / HTTP/2.5\r\nHost: x\r\n\r\n", 505),
    (b"POST /files/big HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
])
def test_error_statuses_close_connection(server, raw, status):
    with RawClient(server.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status
        assert r.header("connection") == "close"
        assert c.closed_by_peer()
    assert get(server.port, "/plaintext")[0] == 200  # the server goes on serving


def test_method_not_allowed_has_allow(server):
    with RawClient(server.port) as c:
        c.send(b"DELETE /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 405 and "GET" in r.header("allow")
        c.send(GET % b"/plaintext")
        assert c.read_response().status == 200


def test_stream_and_sse(server):
    with RawClient(server.port) as c:
        c.send(GET % b"/stream")
        r = c.read_response()
        assert r.status == 200 and r.header("transfer-encoding") == "chunked" and r.body
        c.send(GET % b"/sse?count=2&interval_ms=10")
        r = c.read_response()
        assert r.header("content-type").startswith("text/event-stream")
        assert r.body.count(b"data:") == 2


def test_metrics(server):
    get(server.port, "/plaintext")
    status, _, body = get(server.port, "/_metrics")
    data = json.loads(body)
    assert status == 200 and data["engine"] == server.engine


def test_gzip(server):
    status, headers, body = get(server.port, "/", {"Accept-Encoding": "gzip"})
    assert status == 200
    if len(body) > 1024 or headers.get("content-encoding") == "gzip":
        import gzip
        assert headers.get("content-encoding") == "gzip"
        assert b"<html" in gzip.decompress(body).lower()


@pytest.mark.parametrize("engine", ["selectors", "asyncio"])  # the blocking engines hold a worker
def test_concurrent_waits_overlap(engine, server_factory):  # per wait (checked by Little's law)
    srv = server_factory(engine)

    def one(_):
        return get(srv.port, "/io?ms=200")[0]

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    elapsed = time.monotonic() - start
    assert statuses == [200] * 50
    assert elapsed < 50 * 0.2 / 4, elapsed


def test_threadpool_waits_bounded_by_workers(server_factory):
    srv = server_factory("threadpool", "--threads", "4")

    def one(_):
        return get(srv.port, "/io?ms=200")[0]

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(8)))
    elapsed = time.monotonic() - start
    assert statuses == [200] * 8
    assert elapsed >= 0.38  # 8 waits on 4 workers: at least two rounds (Little's law)


def test_graceful_stop_finishes_in_flight(engine, server_factory):
    srv = server_factory(engine, "--drain-timeout", "5")
    with RawClient(srv.port) as c:
        c.send(GET % b"/io?ms=500")
        wait_in_flight(srv.port, 1)  # the request reached its handler before the signal
        srv.proc.send_signal(signal.SIGTERM)
        r = c.read_response()
        assert r.status == 200 and r.body == b"waited 500 ms\n"
    assert srv.proc.wait(10) == 0 or srv.proc.returncode in (0, -15)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_processpool_replaces_killed_worker(server_factory):
    import psutil

    srv = server_factory("processpool", "--workers", "2")
    parent = psutil.Process(srv.proc.pid)
    deadline = time.monotonic() + 10
    while len(parent.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table: forks have no event to wait on
    children = parent.children()
    assert len(children) == 2
    os.kill(children[0].pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = {p.pid for p in parent.children()}
        if len(now) == 2 and children[0].pid not in now:
            break
        time.sleep(0.05)
    assert len(parent.children()) == 2 and children[0].pid not in {p.pid for p in parent.children()}
    for _ in range(5):
        assert get(srv.port, "/plaintext")[0] == 200


def test_idle_keepalive_closed(server_factory, engine):
    srv = server_factory(engine, "--keepalive-timeout", "1")
    with RawClient(srv.port) as c:
        c.send(GET % b"/plaintext")
        assert c.read_response().status == 200
        c.sock.settimeout(5)
        assert c.closed_by_peer()


def test_slow_head_gets_408(server_factory, engine):
    srv = server_factory(engine, "--header-timeout", "1")
    with RawClient(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHo")
        c.sock.settimeout(5)
        r = c.read_response()
        assert r.status == 408


def test_http_client_independent(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for i in range(5):
        conn.request("POST", f"/files/hc{i}.txt", body=b"x" * 1000)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201
    conn.close()


# -- request-target forms (RFC 9112 §3.2) ---------------------------------------------------


def test_absolute_form_is_accepted_and_its_authority_wins(server):
    """A server MUST accept the absolute-form; its authority, not Host, is the request's host
    (§3.2.2), and the rest is routed as the origin-form."""
    r = exchange(server.port, b"GET http://other.example/_conn HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0]
    assert r.status == 200 and json.loads(r.body)["authority"] == "other.example"
    r = exchange(server.port, b"GET http://other.example/plaintext?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert (r.status, r.body) == (200, b"Hello, World!")


@pytest.mark.parametrize("line", [
    b"GET foo/bar HTTP/1.1",                        # no form at all
    b"GET http://user:pw@other.example/ HTTP/1.1",  # userinfo (RFC 9110 §4.2.4)
    b"GET * HTTP/1.1",                              # asterisk-form only for OPTIONS
    b"GET other.example:80 HTTP/1.1",               # authority-form only for CONNECT
    b"GET ftp://other.example/ HTTP/1.1",           # not an http(s) URI
])
def test_other_target_forms_are_400_and_close(server, line):
    with RawClient(server.port) as c:
        c.send(line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        r = c.read_response()
        assert r.status == 400 and r.header("connection") == "close"
        assert c.closed_by_peer()
    assert get(server.port, "/plaintext")[0] == 200  # the server goes on serving


def test_options_asterisk_is_answered(server):
    r = exchange(server.port, b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0]
    assert r.status == 200 and "GET" in r.header("allow")
