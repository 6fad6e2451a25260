"""The client role alone (raw frames), against our server in memory, and against the h2 library."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import hpack
import pytest
from h2_support import (DataFrame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
                        WindowUpdateFrame, parse_frames, raw)

from protocol import H2ClientConnection, H2Config, H2Connection
from protocol import events as ev
from protocol.errors import ErrorCode as E
from protocol.errors import LocalProtocolError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def pump(client: H2ClientConnection, server: H2Connection, respond=None, rounds: int = 10000):
    """Move bytes both ways until quiet. ``respond(server, event)`` plays the application.
    Returns (client events, server events)."""
    cev: list[ev.Event] = []
    sev: list[ev.Event] = []
    for _ in range(rounds):
        a = client.data_to_send()
        if a:
            new = server.receive_data(a)
            sev += new
            for e in new:
                if respond is not None:
                    respond(server, e)
        b = server.data_to_send()
        if b:
            cev += client.receive_data(b)
        if not a and not b:
            if respond is not None and getattr(respond, "more", None) and respond.more(server):
                continue
            break
    return cev, sev


class Responder:
    """Answers every complete request with ``body_for(request)``, within the flow-control windows."""

    def __init__(self, body_for=lambda req: b"hello", status=200):
        self.body_for = body_for
        self.status = status
        self.requests: dict[int, ev.RequestReceived] = {}
        self.received: dict[int, bytes] = {}
        self.sending: dict[int, bytes] = {}

    def __call__(self, server, e):
        if isinstance(e, ev.RequestReceived):
            self.requests[e.stream_id] = e
        elif isinstance(e, ev.DataReceived):
            self.received[e.stream_id] = self.received.get(e.stream_id, b"") + e.data
        elif isinstance(e, ev.MessageComplete):
            body = self.body_for(self.requests[e.stream_id])
            server.send_headers(e.stream_id, self.status, [("content-length", str(len(body)))], end_stream=not body)
            if body:
                self.sending[e.stream_id] = body
        if isinstance(e, (ev.MessageComplete, ev.FlowControlUpdated)):
            self.more(server)

    def more(self, server) -> bool:
        sent = False
        for sid, rest in list(self.sending.items()):
            n = min(len(rest), server.max_send_size(sid))
            if n:
                server.send_data(sid, rest[:n], end_stream=n == len(rest))
                sent = True
                self.sending[sid] = rest[n:]
                if n == len(rest):
                    del self.sending[sid]
        return sent


def collect(events, kind):
    return [e for e in events if isinstance(e, kind)]


def bodies(events) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for e in collect(events, ev.DataReceived):
        out[e.stream_id] = out.get(e.stream_id, b"") + e.data
    return out


# -- client on its own -------------------------------------------------------------------------

def test_client_sends_preface_settings_without_push():
    c = H2ClientConnection()
    data = c.data_to_send()
    assert data.startswith(PREFACE)
    frames = parse_frames(data[24:])
    assert isinstance(frames[0], SettingsFrame) and frames[0].settings[2] == 0
    assert isinstance(frames[1], WindowUpdateFrame) and frames[1].stream_id == 0


def test_client_request_encoding_is_decodable_and_cached():
    c = H2ClientConnection()
    c.data_to_send()
    dec = hpack.Decoder()
    blocks = []
    for _ in range(3):
        sid = c.send_request("GET", "/x?y=1", "example.com", headers=[("accept", "*/*"), ("connection", "x"), ("host", "h")])
        (f,) = parse_frames(c.data_to_send())
        assert f.stream_id == sid and f.flags == {"END_STREAM", "END_HEADERS"}
        blocks.append(dec.decode(f.data))
    assert blocks[0] == blocks[2] == [(":method", "GET"), (":scheme", "http"), (":authority", "example.com"),
                                      (":path", "/x?y=1"), ("accept", "*/*")]
    assert [1, 3, 5] == sorted(c._streams)


def test_client_answers_ping_and_applies_settings():
    c = H2ClientConnection()
    c.data_to_send()
    c.receive_data(SettingsFrame(0, settings={3: 7}).serialize() + PingFrame(0, opaque_data=b"abcdefgh").serialize())
    frames = parse_frames(c.data_to_send())
    assert any(isinstance(f, SettingsFrame) and "ACK" in f.flags for f in frames)
    assert any(isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == b"abcdefgh" for f in frames)
    assert c.available_streams == 7
    c.send_request("GET", "/", "a")
    assert c.available_streams == 6


def _client_with_stream():
    c = H2ClientConnection()
    c.receive_data(SettingsFrame(0).serialize())
    sid = c.send_request("GET", "/", "a")
    c.data_to_send()
    return c, sid


def test_client_push_promise_is_protocol_error():
    c, sid = _client_with_stream()
    evs = c.receive_data(raw(0x5, 0x4, sid, b"\x00\x00\x00\x02\x82"))
    assert evs[-1].error_code == E.PROTOCOL_ERROR and c.closed


@pytest.mark.parametrize("block,code", [
    (hpack.Encoder().encode([("content-type", "x")]), E.PROTOCOL_ERROR),           # no :status
    (hpack.Encoder().encode([(":status", "200"), (":path", "/")]), E.PROTOCOL_ERROR),  # request pseudo
    (hpack.Encoder().encode([(":status", "20")]), E.PROTOCOL_ERROR),
])
def test_client_malformed_response_is_stream_error(block, code):
    c, sid = _client_with_stream()
    evs = c.receive_data(raw(0x1, 0x5, sid, block))
    assert evs == [ev.StreamReset(stream_id=sid, error_code=code, remote=False)]
    assert isinstance(parse_frames(c.data_to_send())[0], RstStreamFrame)


def test_client_data_before_response_head_is_stream_error():
    c, sid = _client_with_stream()
    evs = c.receive_data(DataFrame(sid, data=b"x").serialize())
    assert evs == [ev.StreamReset(stream_id=sid, error_code=E.PROTOCOL_ERROR, remote=False)]


def test_client_goaway_refuses_streams_above_last_and_closes_when_drained():
    c = H2ClientConnection()
    c.receive_data(SettingsFrame(0).serialize())
    s1 = c.send_request("GET", "/", "a")
    s3 = c.send_request("GET", "/", "a")
    evs = c.receive_data(GoAwayFrame(0, last_stream_id=s1, error_code=0).serialize())
    assert ev.StreamReset(stream_id=s3, error_code=E.REFUSED_STREAM, remote=True) in evs
    assert not c.closed and c.available_streams == 0
    with pytest.raises(LocalProtocolError):
        c.send_request("GET", "/", "a")
    enc = hpack.Encoder()
    evs = c.receive_data(raw(0x1, 0x5, s1, enc.encode([(":status", "200")])))
    assert isinstance(evs[0], ev.ResponseReceived) and evs[0].end_stream and c.closed


def test_client_ignores_data_on_streams_it_reset():
    c, sid = _client_with_stream()
    c.reset_stream(sid, E.CANCEL)
    assert c.receive_data(DataFrame(sid, data=b"late").serialize()) == []
    assert not c.closed


# -- client and server in memory ---------------------------------------------------------------

def test_pair_many_concurrent_streams():
    client, server = H2ClientConnection(), H2Connection()
    r = Responder(lambda req: req.target.encode() * 10)
    pump(client, server, r)
    sids = [client.send_request("GET", f"/item/{i}", "lab", headers=[("x-i", str(i))]) for i in range(100)]
    assert client.available_streams == 0
    cev, sev = pump(client, server, r)
    assert len(collect(sev, ev.RequestReceived)) == 100
    got = bodies(cev)
    assert all(got[sid] == f"/item/{i}".encode() * 10 for i, sid in enumerate(sids))
    assert len(collect(cev, ev.MessageComplete)) == 100
    assert client.available_streams == 100 and server.open_stream_count == 0


def test_pair_one_mib_response_through_a_65535_window():
    cfg = H2Config(initial_window_size=65535, connection_window_size=65535)
    client, server = H2ClientConnection(cfg), H2Connection()
    body = bytes(range(256)) * 4096
    r = Responder(lambda req: body)
    pump(client, server, r)
    sid = client.send_request("GET", "/big", "lab")
    cev, _ = pump(client, server, r)
    assert bodies(cev)[sid] == body
    assert collect(cev, ev.ResponseReceived)[0].headers == (("content-length", str(len(body))),)
    assert collect(cev, ev.MessageComplete) == [ev.MessageComplete(stream_id=sid)]


def test_pair_large_upload_is_queued_until_windows_open():
    client, server = H2ClientConnection(), H2Connection()
    r = Responder(lambda req: b"%d" % len(r.received.get(req.stream_id, b"")))
    pump(client, server, r)
    body = b"u" * 300_000
    sid = client.send_request("POST", "/up", "lab", headers=[("content-length", str(len(body)))], body=body)
    cev, _ = pump(client, server, r)
    assert r.received[sid] == body and bodies(cev)[sid] == b"300000"


def test_pair_streaming_request_with_trailers():
    client, server = H2ClientConnection(), H2Connection()
    pump(client, server)
    sid = client.send_request("POST", "/s", "lab", end_stream=False)
    client.send_data(sid, b"part1")
    client.send_end(sid, [("x-sum", "5")])
    _, sev = pump(client, server)
    assert sev[-1] == ev.MessageComplete(stream_id=sid, trailers=(("x-sum", "5"),))
    server.send_informational(sid, 100)
    server.send_headers(sid, 200, [("x-a", "b")])
    server.send_data(sid, b"resp")
    server.send_end(sid, [("x-t", "1")])
    cev, _ = pump(client, server)
    assert [type(e) for e in cev] == [ev.InformationalResponseReceived, ev.ResponseReceived, ev.DataReceived,
                                      ev.MessageComplete]
    assert cev[-1].trailers == (("x-t", "1"),) and client.open_stream_count == 0


def test_pair_head_and_204_skip_content_length_check():
    client, server = H2ClientConnection(), H2Connection()
    pump(client, server)
    s1 = client.send_request("HEAD", "/", "lab")
    pump(client, server)
    server.send_headers(s1, 200, [("content-length", "1234")], end_stream=True)
    cev, _ = pump(client, server)
    assert cev[-1] == ev.MessageComplete(stream_id=s1)


def test_pair_server_max_concurrent_streams_is_honoured_by_available_streams():
    client, server = H2ClientConnection(), H2Connection(H2Config(max_concurrent_streams=3))
    pump(client, server)
    assert client.available_streams == 3


def test_pair_graceful_shutdown():
    client, server = H2ClientConnection(), H2Connection()
    pump(client, server)
    sid = client.send_request("GET", "/", "lab")
    pump(client, server)
    server.start_shutdown()
    cev, _ = pump(client, server)
    term = collect(cev, ev.ConnectionTerminated)
    assert term[0].last_stream_id == 2**31 - 1 and term[-1].last_stream_id == sid
    server.send_headers(sid, 200, [], end_stream=True)
    cev, _ = pump(client, server)
    assert isinstance(cev[0], ev.ResponseReceived) and client.closed and server.closed


# -- against the h2 library as server ----------------------------------------------------------

def test_interop_with_h2_library_server():
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    server.initiate_connection()
    client = H2ClientConnection(H2Config(initial_window_size=65535, connection_window_size=65535))
    sids = [client.send_request("GET", f"/{i}", "lab") for i in range(10)]
    sid_post = client.send_request("POST", "/up", "lab", body=b"p" * 100_000)
    uploaded = 0
    cev: list[ev.Event] = []
    for _ in range(500):
        for e in server.receive_data(client.data_to_send()):
            if isinstance(e, h2.events.RequestReceived) and e.stream_id in sids:
                server.send_headers(e.stream_id, [(":status", "200"), ("server", "h2")])
                server.send_data(e.stream_id, b"r" * 6000, end_stream=True)
            elif isinstance(e, h2.events.DataReceived):
                uploaded += len(e.data)
                server.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, h2.events.StreamEnded) and e.stream_id == sid_post:
                server.send_headers(sid_post, [(":status", "201")], end_stream=True)
        cev += client.receive_data(server.data_to_send())
        if len(collect(cev, ev.MessageComplete)) == 11:
            break
    assert uploaded == 100_000
    assert all(len(bodies(cev)[s]) == 6000 for s in sids)
    assert {e.stream_id: e.status for e in collect(cev, ev.ResponseReceived)}[sid_post] == 201
