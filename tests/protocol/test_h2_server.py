"""The server role's API: sending, graceful shutdown, h2c upgrade, limits and abuse counters."""

from __future__ import annotations

import base64

import h2.config
import h2.connection
import h2.events
import pytest
from h2_support import (REQ, ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame,
                        RstStreamFrame, ServerPeer, SettingsFrame, WindowUpdateFrame, parse_frames, raw)

from protocol import events as ev
from protocol.errors import ErrorCode as E
from protocol.errors import LocalProtocolError, WindowExceeded
from protocol.h2_connection import H2Config, H2Connection


# -- sending -----------------------------------------------------------------------------------

def test_send_headers_drops_connection_specific_fields_and_encodes_status():
    p = ServerPeer()
    p.send(p.headers(1))
    p.server.send_headers(1, 404, [("content-type", "text/plain"), ("connection", "close"),
                                   ("transfer-encoding", "chunked"), ("keep-alive", "1")], end_stream=True)
    (h,) = p.read()
    assert h.decoded == [(":status", "404"), ("content-type", "text/plain")]
    assert "END_STREAM" in h.flags and p.server.open_stream_count == 0


@pytest.mark.parametrize("headers", [[("Content-Type", "x")], [("x", "a\nb")], [("x", "a\x00")], [("x y", "1")]])
def test_send_headers_rejects_invalid_fields(headers):
    p = ServerPeer()
    p.send(p.headers(1))
    with pytest.raises(LocalProtocolError):
        p.server.send_headers(1, 200, headers)


def test_send_data_before_headers_or_beyond_window_raises():
    p = ServerPeer(settings={4: 10})
    p.send(p.headers(1))
    with pytest.raises(LocalProtocolError):
        p.server.send_data(1, b"x")
    p.server.send_headers(1, 200, [])
    with pytest.raises(LocalProtocolError):
        p.server.send_data(1, b"x" * 11)
    with pytest.raises(LocalProtocolError):
        p.server.send_headers(1, 200, [])
    with pytest.raises(LocalProtocolError):
        p.server.send_headers(99, 200, [])



def test_send_response_is_headers_then_data_with_end_stream():
    """A whole response: HEADERS without END_STREAM, one DATA frame carrying END_STREAM (no
    empty DATA frame after it); the stream is closed and its window charged."""
    p = ServerPeer()
    p.send(p.headers(1))
    window = p.server.max_send_size(1)
    p.server.send_response(1, 200, [("content-type", "text/plain")], b"hello")
    h, d = p.read()
    assert isinstance(h, HeadersFrame) and "END_STREAM" not in h.flags and "END_HEADERS" in h.flags
    assert h.decoded == [(":status", "200"), ("content-type", "text/plain")]
    assert isinstance(d, DataFrame) and d.data == b"hello" and "END_STREAM" in d.flags
    assert p.server.open_stream_count == 0 and p.server.max_send_size(1) == 0
    p.send(p.headers(3))
    assert p.server.max_send_size(3) == window - 5  # the connection window was charged


def test_send_response_larger_than_a_frame_is_split_at_the_peers_max_frame_size():
    """A body beyond SETTINGS_MAX_FRAME_SIZE (§4.2) leaves the two-frame fast path: DATA frames
    of at most the peer's maximum, END_STREAM on the last only."""
    p = ServerPeer(settings={4: 100000})
    p.send(p.headers(1))
    p.server.send_response(1, 200, [], b"x" * 20000)
    frames = p.read()
    assert isinstance(frames[0], HeadersFrame) and "END_STREAM" not in frames[0].flags
    assert [(len(f.data), "END_STREAM" in f.flags) for f in frames[1:]] == [(16384, False), (3616, True)]
    assert p.server.open_stream_count == 0


def test_send_response_without_body_ends_on_headers_and_beyond_the_window_raises():
    p = ServerPeer(settings={4: 4})
    p.send(p.headers(1), p.headers(3))
    p.server.send_response(1, 204, [], b"")
    (h,) = p.read()
    assert isinstance(h, HeadersFrame) and "END_STREAM" in h.flags
    with pytest.raises(WindowExceeded):
        p.server.send_response(3, 200, [], b"hello")  # 5 octets, a stream window of 4
    assert p.read() == [] and p.server.max_send_size(3) == 4  # nothing queued, nothing charged
    p.server.send_response(3, 200, [], b"hell")
    assert [type(f) for f in p.read()] == [HeadersFrame, DataFrame]
    with pytest.raises(LocalProtocolError):
        p.server.send_response(3, 200, [], b"")  # the stream is closed


def test_repeated_response_heads_decode_the_same_with_a_changing_field():
    """Heads come from a cache keyed by status and fields; the peer's decoder (which tracks
    the dynamic table) must read every one right, also when a field changes in between."""
    p = ServerPeer()
    sid = 1
    for date in ("d1", "d1", "d2", "d1", "d2", "d2"):
        p.send(p.headers(sid))
        p.server.send_response(sid, 200, [("content-type", "text/plain"), ("date", date)], b"x")
        h, _ = p.read()
        assert h.decoded == [(":status", "200"), ("content-type", "text/plain"), ("date", date)]
        sid += 2

def test_large_header_block_is_split_into_continuation_frames():
    p = ServerPeer()
    p.send(p.headers(1))
    p.server.send_headers(1, 200, [(f"x-h{i}", "v" * 1000) for i in range(40)], end_stream=True)
    frames = p.read()
    assert isinstance(frames[0], HeadersFrame) and isinstance(frames[-1], ContinuationFrame)
    assert "END_HEADERS" in frames[-1].flags and len(frames) > 2
    assert len(frames[0].decoded) == 41


def test_send_end_with_trailers_and_informational():
    p = ServerPeer()
    p.send(p.headers(1))
    p.server.send_informational(1, 103, [("link", "</a.css>")])
    p.server.send_headers(1, 200, [])
    p.server.send_data(1, b"body")
    p.server.send_end(1, [("x-checksum", "abc")])
    h103, h200, data, trailers = p.read()
    assert h103.decoded == [(":status", "103"), ("link", "</a.css>")] and "END_STREAM" not in h103.flags
    assert data.data == b"body" and trailers.decoded == [("x-checksum", "abc")] and "END_STREAM" in trailers.flags
    with pytest.raises(LocalProtocolError):
        p.server.send_end(1)


def test_send_end_without_trailers_is_empty_data_with_end_stream():
    p = ServerPeer()
    p.send(p.headers(1))
    p.server.send_headers(1, 200, [])
    p.server.send_end(1)
    frames = p.read()
    assert isinstance(frames[-1], DataFrame) and frames[-1].data == b"" and "END_STREAM" in frames[-1].flags


def test_reset_stream_sends_rst_and_next_events_is_empty():
    p = ServerPeer()
    p.send(p.headers(1, end_stream=False))
    p.server.reset_stream(1, E.INTERNAL_ERROR)
    (rst,) = p.read()
    assert isinstance(rst, RstStreamFrame) and rst.error_code == E.INTERNAL_ERROR
    p.server.reset_stream(1, E.INTERNAL_ERROR)  # twice: no-op
    assert p.read() == [] and p.server.next_events() == []


def test_eof_terminates():
    p = ServerPeer()
    assert p.send(b"") == [ev.ConnectionTerminated(error_code=0, remote=True, reason="EOF")]
    assert p.server.closed and p.send(b"more") == []


def test_close_connection_sends_goaway():
    p = ServerPeer()
    p.send(p.headers(3))
    p.server.close_connection(E.NO_ERROR)
    (g,) = p.read()
    assert isinstance(g, GoAwayFrame) and g.last_stream_id == 3 and p.server.closed


# -- graceful shutdown (§6.8) ------------------------------------------------------------------

def test_graceful_shutdown_two_goaways_and_in_flight_streams_finish():
    p = ServerPeer()
    p.send(p.headers(1))
    p.server.start_shutdown()
    g1, ping = p.read()
    assert g1.last_stream_id == 2**31 - 1 and g1.error_code == 0 and isinstance(ping, PingFrame)
    p.send(p.headers(3))  # in flight before the client saw the GOAWAY: accepted
    p.send(PingFrame(0, opaque_data=ping.opaque_data, flags=["ACK"]))
    (g2,) = p.read()
    assert g2.last_stream_id == 3 and not p.server.closed
    assert p.send(p.headers(5)) == []  # after the final GOAWAY: ignored
    p.respond(1, b"one")
    assert not p.server.closed
    p.respond(3)
    assert p.server.closed and p.server.open_stream_count == 0


def test_graceful_shutdown_with_no_streams_closes_on_ping_ack():
    p = ServerPeer()
    p.server.start_shutdown()
    _, ping = p.read()
    p.send(PingFrame(0, opaque_data=ping.opaque_data, flags=["ACK"]))
    assert p.server.closed


# -- h2c upgrade (RFC 7540 §3.2) ---------------------------------------------------------------

def _upgrade_request():
    return ev.RequestReceived(stream_id=1, method="GET", target="/", authority="x", scheme="http",
                              http_version="1.1", headers=())


def test_from_upgrade_applies_settings_and_answers_stream_1():
    settings = base64.urlsafe_b64encode(b"\x00\x04\x00\x00\x00\x0a\x00\x03\x00\x00\x00\x05").rstrip(b"=").decode()
    conn = H2Connection.from_upgrade(settings, _upgrade_request())
    assert conn.max_send_size(1) == 10 and conn.open_stream_count == 1
    conn.data_to_send()
    evs = conn.receive_data(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
    assert evs == []
    conn.send_headers(1, 200, [], end_stream=True)
    frames = parse_frames(conn.data_to_send())
    assert isinstance(frames[-1], HeadersFrame) and frames[-1].stream_id == 1
    assert conn.open_stream_count == 0


def test_from_upgrade_with_invalid_settings_is_connection_error():
    conn = H2Connection.from_upgrade("not base64!", _upgrade_request())
    assert conn.closed
    assert isinstance(conn.next_events()[0], ev.ConnectionTerminated)
    assert isinstance(parse_frames(conn.data_to_send())[-1], GoAwayFrame)


def test_from_upgrade_with_the_h2_library_as_client():
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    conn = H2Connection.from_upgrade(settings.decode(), _upgrade_request())
    assert conn.receive_data(client.data_to_send()) == []
    assert not conn.closed
    conn.send_headers(1, 200, [("content-length", "2")])
    conn.send_data(1, b"ok", end_stream=True)
    kinds = [type(e) for e in client.receive_data(conn.data_to_send())]
    assert h2.events.ResponseReceived in kinds and h2.events.StreamEnded in kinds


# -- limits and abuse (§10.5) ------------------------------------------------------------------

def test_10_5_1_header_list_above_max_header_list_size_is_answered_431():
    p = ServerPeer(H2Config(max_header_list_size=1000))
    evs = p.send(p.headers(1, REQ + [("x-big", "v" * 1200)]))
    assert not any(isinstance(e, ev.RequestReceived) for e in evs)
    (h,) = p.read()
    assert h.decoded[0] == (":status", "431") and p.server.open_stream_count == 0
    p.expect_ping_ack()


def test_10_5_1_hpack_bomb_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_header_list_size=8000))
    p.send(p.headers(1, REQ + [("x-big", "v" * 4000)]))
    p.read()
    bomb = p.block(REQ) + b"\xbe" * 10  # ten references to the 4 KB dynamic entry
    p.send(raw(0x1, 0x5, 3, bomb))
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_header_block_size_cap_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_header_block_size=1000))
    p.send(HeadersFrame(1, data=b"\x82" * 600), ContinuationFrame(1, data=b"\x82" * 600))
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_continuation_flood_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_continuation_frames=32))
    p.send(HeadersFrame(1, data=p.block()), *[ContinuationFrame(1, data=b"") for _ in range(33)])
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_rapid_reset_is_enhance_your_calm():
    p = ServerPeer(H2Config(rapid_reset_max=20, rapid_reset_window=100))
    frames = []
    for i in range(21):
        sid = 1 + 2 * i
        frames += [p.headers(sid, end_stream=False), RstStreamFrame(sid, error_code=E.CANCEL)]
    p.send(*frames)
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_resets_spread_over_many_streams_are_allowed():
    p = ServerPeer(H2Config(rapid_reset_max=5, rapid_reset_window=10))
    sid = 1
    for _ in range(10):
        p.send(p.headers(sid, end_stream=False), RstStreamFrame(sid, error_code=E.CANCEL))
        sid += 2
        for _ in range(10):
            p.send(p.headers(sid))
            p.respond(sid)
            sid += 2
    assert not p.server.closed


def test_10_5_ping_flood_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_pending_acks=50))
    p.send(*[PingFrame(0, opaque_data=b"%08d" % i) for i in range(51)])
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_settings_flood_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_pending_acks=50))
    p.send(*[SettingsFrame(0, settings={3: 10}) for _ in range(51)])
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_acks_taken_by_the_engine_do_not_count():
    p = ServerPeer(H2Config(max_pending_acks=50))
    for _ in range(5):
        p.send(*[PingFrame(0, opaque_data=b"12345678") for _ in range(40)])
        p.read()
    assert not p.server.closed


def test_10_5_empty_data_flood_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_empty_data_frames=100))
    p.send(*p.post(1, end_stream=False), *[DataFrame(1, data=b"") for _ in range(101)])
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_10_5_repeatedly_exceeding_max_concurrent_streams_is_enhance_your_calm():
    p = ServerPeer(H2Config(max_concurrent_streams=1, max_refused_streams=10))
    p.send(*[p.headers(1 + 2 * i) for i in range(12)])
    p.expect_connection_error(E.ENHANCE_YOUR_CALM)


def test_closed_streams_are_remembered_within_a_bound():
    p = ServerPeer(H2Config(max_closed_streams=10))
    for i in range(50):
        p.send(p.headers(1 + 2 * i))
        p.respond(1 + 2 * i)
    assert len(p.server._closed_streams) == 10


# -- the independent h2 library as client ------------------------------------------------------

def _pump_h2_client(client, server, uploads, downloads):
    """Run an h2-library client against our server until every exchange is done."""
    got_up: dict[int, bytes] = {}
    got_down: dict[int, int] = {}
    answering: dict[int, bytes] = {}
    for _ in range(1000):
        for sid, rest in list(uploads.items()):
            n = min(len(rest), client.local_flow_control_window(sid), client.max_outbound_frame_size)
            if n or not rest:
                client.send_data(sid, rest[:n], end_stream=n == len(rest))
                uploads[sid] = rest[n:]
                if n == len(rest):
                    del uploads[sid]
        for e in server.receive_data(client.data_to_send()):
            if isinstance(e, ev.DataReceived):
                got_up[e.stream_id] = got_up.get(e.stream_id, b"") + e.data
            elif isinstance(e, ev.MessageComplete):
                server.send_headers(e.stream_id, 200, [("content-type", "application/octet-stream")])
                answering[e.stream_id] = downloads[e.stream_id]
        for sid, rest in list(answering.items()):
            n = min(len(rest), server.max_send_size(sid))
            server.send_data(sid, rest[:n])
            answering[sid] = rest[n:]
            if not answering[sid]:
                server.send_end(sid)
                del answering[sid]
        for e in client.receive_data(server.data_to_send()):
            if isinstance(e, h2.events.DataReceived):
                client.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                got_down[e.stream_id] = got_down.get(e.stream_id, 0) + len(e.data)
        if not uploads and not answering and len(got_down) == len(downloads):
            break
    return got_up, got_down


def test_interop_with_h2_library_client_many_streams_and_large_bodies():
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    server = H2Connection()
    uploads, downloads = {}, {}
    for i in range(20):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, [(":method", "POST"), (":path", f"/{i}"), (":scheme", "https"),
                                  (":authority", "lab"), ("content-length", str(3000 * i))])
        uploads[sid] = b"u" * (3000 * i)
        downloads[sid] = b"d" * (5000 * sid)
    got_up, got_down = _pump_h2_client(client, server, uploads, downloads)
    assert {sid: len(b) for sid, b in got_up.items()} == {2 * i + 1: 3000 * i for i in range(1, 20)}
    assert got_down == {sid: 5000 * sid for sid in range(1, 40, 2)}
    assert server.open_stream_count == 0 and not server.closed


def test_rfc7541_decoded_block_cache_follows_the_dynamic_table():
    """Header blocks that leave the HPACK table unchanged are decoded once and reused; any
    insertion empties that cache, so a dynamic index means what the table says now."""
    p = ServerPeer()
    base = b"\x82\x86\x84\x41\x0bexample.com"          # GET http / (authority: inserted)
    pure = b"\x82\x86\x04\x87\x62\xba\x06\x6a\x92\x5f\x29\xbe"  # :path literal w/o indexing
    reqs = p.send(raw(0x1, 0x5, 1, base), raw(0x1, 0x5, 3, pure), raw(0x1, 0x5, 5, pure))
    assert [r.target for r in reqs if isinstance(r, ev.RequestReceived)] == ["/", "/plaintext", "/plaintext"]
    assert p.server._decoded  # the table did not change: cached
    q = b"\x82\x86\x84\x01\x01a\xbe"                # authority "a" (not indexed), dynamic 62
    for sid, insert, want in ((7, b"\x40\x03x-a\x011", ("x-a", "1")), (13, b"\x40\x03x-b\x012", ("x-b", "2"))):
        out = p.send(raw(0x1, 0x5, sid, b"\x82\x86\x84\x01\x01a" + insert), raw(0x1, 0x5, sid + 2, q),
                     raw(0x1, 0x5, sid + 4, q))
        assert [r.headers for r in out if isinstance(r, ev.RequestReceived)] == [(want,)] * 3
        assert q in p.server._decoded  # the same octets, cached until the next insertion
