"""The asyncio engine reads through one loop-wide buffer (``BufferedProtocol``, RECV_SIZE bytes a
read), on asyncio's loop and on uvloop's: a body of many reads arrives whole (its length counted
by the app) on four HTTP/1.1 connections sending at once, and over h2c."""

from __future__ import annotations

import http.client
import threading

import httpx
import pytest

from engines.lifecycle import RECV_SIZE


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_bodies_of_many_reads_arrive_whole_on_both_loops(server_factory, loop):
    srv = server_factory("asyncio", "--loop", loop)
    size = 5 * RECV_SIZE + 123
    results: dict[int, bytes] = {}

    def post(i: int) -> None:
        c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        c.request("POST", "/", body=bytes([i]) * size)
        results[i] = c.getresponse().read()
        c.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == {i: f"received {size} bytes\n".encode() for i in range(4)}
    with httpx.Client(http1=False, http2=True, timeout=10) as client:  # h2c prior knowledge
        r = client.post(f"{srv.url}/", content=b"x" * size)
    assert r.http_version == "HTTP/2" and r.text == f"received {size} bytes\n"
