"""HTTP/2 abuse over real sockets, on every engine: Rapid Reset (CVE-2023-44487), CONTINUATION
flood (CVE-2024-27316 and kin), HPACK bomb, SETTINGS / PING / empty DATA floods (CVE-2019-9512,
-9515, -9518), and streams beyond SETTINGS_MAX_CONCURRENT_STREAMS. The limits are ``H2Config``'s
(protocol/h2_settings.py); docs/limits-and-hardening.md, "HTTP/2 abuse", lists each mitigation. The protocol-level tests of
the same limits are in tests/protocol/test_h2_server.py.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import ENGINES, start_server
from h2wire import (CLOSED, TIMEOUT, ContinuationFrame, DataFrame, GoAwayFrame, H2Wire, HeadersFrame,
                    PingFrame, RstStreamFrame, SettingsFrame, raw)
from rawhttp import wait_in_flight

ENHANCE_YOUR_CALM = 0xB
REFUSED_STREAM = 0x7
CANCEL = 0x8


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One server per engine for the module (``--threads 16`` for threadpool: a connection's
    streams may hold 4 of them, so that the test of cancelled handlers can tell a freed worker
    from a held one)."""
    started: dict = {}

    def get(engine: str):
        if engine not in started:
            args = ("--threads", "16") if engine == "threadpool" else ()
            started[engine] = start_server(engine, *args, tmp_path=tmp_path_factory.mktemp(engine))
        return started[engine]

    yield get
    for srv in started.values():
        srv.stop()


@pytest.fixture(params=ENGINES)
def srv(request, servers):
    return servers(request.param)


def still_serving(port: int) -> None:
    """A new connection is served: the abuse cost only the abusive connection."""
    with H2Wire(port, timeout=5) as w:
        w.handshake()
        w.request(1, path="/plaintext")
        heads, body, _ = w.response(1)
        assert dict(heads)[":status"] == "200" and body == b"Hello, World!"


def test_rapid_reset_is_goaway_enhance_your_calm(srv):
    """300 streams opened and reset at once (HEADERS + RST_STREAM each): past 200 resets among
    the last 1000 streams the connection is ended with GOAWAY(ENHANCE_YOUR_CALM)."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        frames = []
        for i in range(300):
            sid = 1 + 2 * i
            frames += [w.headers(sid, w.fields(path="/io?ms=50")), RstStreamFrame(sid, error_code=CANCEL)]
        w.send(*frames)
        f = w.expect_connection_error(ENHANCE_YOUR_CALM)
        assert f.last_stream_id >= 401
    still_serving(srv.port)


@pytest.mark.parametrize("bad", ["window-update-0", "priority-length", "data-half-closed"])
def test_made_you_reset_is_goaway_enhance_your_calm(srv, bad):
    """MadeYouReset (CVE-2025-8671): 300 requests, each followed by a frame that makes the
    server reset its stream (a WINDOW_UPDATE of 0 on it, a PRIORITY of 4 octets, DATA after
    END_STREAM). Those resets count toward the rapid-reset budget: past 200 among the last 1000
    streams, GOAWAY(ENHANCE_YOUR_CALM); other connections are served."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        chunks = []
        for i in range(300):
            sid = 1 + 2 * i
            chunks.append(w.headers(sid, w.fields(path="/io?ms=50")).serialize())
            if bad == "window-update-0":
                chunks.append(raw(0x8, 0, sid, b"\0\0\0\0"))
            elif bad == "priority-length":
                chunks.append(raw(0x2, 0, sid, b"\0\0\0\0"))
            else:
                chunks.append(raw(0x0, 0, sid, b"x"))
        w.sock.sendall(b"".join(chunks))
        f = w.expect_connection_error(ENHANCE_YOUR_CALM)
        assert 401 <= f.last_stream_id <= 599
    still_serving(srv.port)


@pytest.mark.parametrize("engine", ["threadpool", "selectors", "asyncio"])  # not processpool: it
def test_reset_stream_cancels_its_handler(engine, servers):  # runs a connection's streams inline
    """Streams reset while their handlers wait (``/io?ms=4000``) are cancelled at once, and no
    ``/io`` response is ever counted for them. On threadpool (16 workers, of which one HTTP/2
    connection's streams may hold 4; three held by the waits) the three are free again at once:
    four more ``/io?ms=300`` streams then finish together (0.3 s, not 4 x 0.3 s one at a time),
    in well under the 4 s the waits had left. (Processpool runs a connection's streams inline:
    its worker reads the RST_STREAM only after the wait.)"""
    srv = servers(engine)
    held = (3, 5, 7)
    with H2Wire(srv.port, timeout=6) as w:
        w.handshake()
        before = io_count(w, 1)
        for sid in held:
            w.request(sid, path="/io?ms=4000")
        w.send(PingFrame(0, opaque_data=b"in-hand!"))
        w.expect_ping_ack(b"in-hand!")
        wait_in_flight(srv.port, len(held))  # the handlers reached their wait
        w.send(*[RstStreamFrame(sid, error_code=CANCEL) for sid in held])
        start = time.monotonic()
        for sid in (9, 11, 13, 15):
            w.request(sid, path="/io?ms=300")
        ended = set()
        while len(ended) < 4:
            f = w.next_frame()
            assert not isinstance(f, str), f
            if "END_STREAM" in f.flags and f.stream_id in (9, 11, 13, 15):
                ended.add(f.stream_id)
        assert time.monotonic() - start < 0.9, "the reset handlers still hold the workers"
        assert io_count(w, 17) - before == 4  # the three reset ones never answered


def io_count(w: H2Wire, sid: int) -> int:
    """Responses counted on route ``/io`` (GET /_metrics on stream ``sid``)."""
    w.request(sid, path="/_metrics")
    return json.loads(w.response(sid)[1])["routes"].get("/io", {}).get("requests", 0)


def test_continuation_flood_is_cut_off(srv):
    """A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames. Past
    32 CONTINUATION frames (or 64 KiB of block) the connection is ended with
    GOAWAY(ENHANCE_YOUR_CALM) without the rest being buffered."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        w.send(w.headers(1, end_headers=False))
        for i in range(200):
            w.send(ContinuationFrame(1, data=b"\x00" * 10))
            if w.closed:
                break
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        w.send(w.headers(1, end_headers=False))
        w.send(*[ContinuationFrame(1, data=b"\x40\x01a\x01b" * 3000) for _ in range(8)])  # 8 x 15 KB
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    still_serving(srv.port)


def _bomb(w: H2Wire, references: int) -> bytes:
    """A header block that inserts one 4000-octet field into the HPACK dynamic table (RFC 7541
    §6.2.1) and then refers to it ``references`` times with one octet each (§6.1, index 62):
    about 4 KiB of header list per octet."""
    head = w.block(w.fields(path="/plaintext"))
    big = w.enc.encode([("x-bomb", "a" * 4000)], huffman=False)  # literal with incremental indexing
    return head + big + b"\xbe" * references


def test_hpack_bomb_is_refused_at_the_header_list_size(srv):
    """A small block decoding past SETTINGS_MAX_HEADER_LIST_SIZE (64 KiB) is answered 431 on its
    stream (RFC 9113 §10.5.1) and the connection goes on; one decoding to more than twice that is
    a connection error ENHANCE_YOUR_CALM, decoding stopped there."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        assert w.server_settings.get(6) == 65536
        block = _bomb(w, 20)  # ~80 KiB decoded from ~4 KiB
        w.send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))
        heads, _, _ = w.response(1)
        assert dict(heads)[":status"] == "431"
        w.request(3, path="/plaintext")
        assert w.response(3)[1] == b"Hello, World!"
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        block = _bomb(w, 3000)  # ~12 MiB decoded from ~7 KiB
        w.send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    still_serving(srv.port)


@pytest.mark.parametrize("flood", ["settings", "ping"])
def test_settings_and_ping_floods_are_enhance_your_calm(srv, flood):
    """5000 SETTINGS or PING frames sent at once, their ACKs never read: past 1000 pending ACKs
    the connection is ended with GOAWAY(ENHANCE_YOUR_CALM); whatever the engine cannot write is
    not read either (read backpressure), so the ACKs queued stay bounded."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        if flood == "settings":
            frames = [SettingsFrame(0, settings={4: 65535})] * 5000
        else:
            frames = [PingFrame(0, opaque_data=b"%08d" % i) for i in range(5000)]
        w.send(*frames)
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    still_serving(srv.port)


def test_empty_data_flood_is_enhance_your_calm(srv):
    """Empty DATA frames without END_STREAM on an open stream cost work and carry nothing: past
    100 in a row the connection is ended with GOAWAY(ENHANCE_YOUR_CALM)."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        w.send(w.headers(1, w.fields("POST", "/"), end_stream=False))
        w.send(*[DataFrame(1, data=b"") for _ in range(150)])
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    still_serving(srv.port)


def test_streams_beyond_max_concurrent_are_refused_then_the_connection_ended(srv):
    """100 streams held open (POST bodies never sent: their handlers wait for the body, holding no
    worker); the 101st is reset with REFUSED_STREAM and the connection goes on; refusing more than
    100 streams ends it with GOAWAY(ENHANCE_YOUR_CALM)."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        assert w.server_settings.get(3) == 100
        w.send(*[w.headers(1 + 2 * i, w.fields("POST", "/"), end_stream=False) for i in range(100)])
        w.send(w.headers(201, w.fields(path="/plaintext")))
        f = w.wait_for(RstStreamFrame, lambda f: f.stream_id == 201)
        assert f.error_code == REFUSED_STREAM
        w.send(DataFrame(1, data=b"abc", flags=["END_STREAM"]))  # one open stream completes
        heads, body, _ = w.response(1)
        assert dict(heads)[":status"] == "200" and body == b"received 3 bytes\n"
        w.send(*[w.headers(203 + 2 * i, w.fields(path="/plaintext")) for i in range(2)])
        w.response(203)  # a slot was free again
        w.send(*[w.headers(207 + 2 * i, w.fields(path="/plaintext")) for i in range(150)])
        w.expect_connection_error(ENHANCE_YOUR_CALM)
    still_serving(srv.port)
