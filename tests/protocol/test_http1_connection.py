"""HTTP/1.x server connection: exchanges, persistence, pipelining, 100-continue, HEAD, framing, h2c."""

from __future__ import annotations

import h11
import pytest

from protocol.errors import LocalProtocolError
from protocol.events import (ConnectionTerminated, DataReceived, MessageComplete, ProtocolSwitched,
                             RequestReceived)
from protocol.http1 import H1Config, H1Connection, _message_complete, _request_received

GET = b"GET /%s HTTP/1.1\r\nHost: example.com\r\n\r\n"
DATE = "Mon, 01 Jan 2024 00:00:00 GMT"


def names(events):
    return [type(e).__name__ for e in events]


def respond(conn, sid, body=b"ok", status=200, headers=(), length=True):
    hs = [("content-type", "text/plain"), *headers]
    if length:
        hs.append(("content-length", str(len(body))))
    conn.send_headers(sid, status, hs)
    if body:
        conn.send_data(sid, body)
    conn.send_end(sid)
    return conn.data_to_send()


def parse_responses(data: bytes, method: str = "GET", count: int = 1):
    """Parse our output with h11's client (an independent implementation), one cycle at a time."""
    client = h11.Connection(h11.CLIENT)
    out = []
    for i in range(count):
        if i:
            client.start_next_cycle()
        client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())
        if i == 0:
            client.receive_data(data)
        while True:
            e = client.next_event()
            assert e is not h11.NEED_DATA
            if isinstance(e, h11.Response):
                resp = [e.status_code, {k.decode(): v.decode() for k, v in e.headers}, b""]
            elif isinstance(e, h11.Data):
                resp[2] += e.data
            elif isinstance(e, h11.EndOfMessage):
                out.append(resp)
                break
    return out


def test_simple_get():
    conn = H1Connection()
    conn.set_date(DATE)
    events = conn.receive_data(GET % b"a?b=c")
    assert events == [
        RequestReceived(stream_id=1, method="GET", target="/a?b=c", authority="example.com",
                        scheme="http", http_version="1.1", headers=(("host", "example.com"),),
                        end_stream=True),
        MessageComplete(stream_id=1),
    ]
    out = respond(conn, 1, b"hello")
    assert out == (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n"
                   b"date: " + DATE.encode() + b"\r\nserver: concurrency-lab\r\n\r\nhello")
    assert not conn.closed and conn.idle and not conn.awaiting_head_bytes
    assert parse_responses(out) == [[200, {"content-type": "text/plain", "content-length": "5",
                                           "date": DATE, "server": "concurrency-lab"}, b"hello"]]


def test_fast_constructors_build_ordinary_events():
    a = _request_received(1, "GET", "/", "x", "http", "1.1", (("host", "x"),), False, True)
    b = RequestReceived(stream_id=1, method="GET", target="/", authority="x", scheme="http",
                        http_version="1.1", headers=(("host", "x"),), end_stream=True)
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert _message_complete(3, ()) == MessageComplete(stream_id=3)


def test_header_names_lowercased_values_latin1_ows_stripped():
    conn = H1Connection()
    events = conn.receive_data(b"GET / HTTP/1.1\r\nHOST:x\r\nX-A: \t a b \t\r\nX-B:\r\nX-C: caf\xe9\r\n\r\n")
    assert events[0].headers == (("host", "x"), ("x-a", "a b"), ("x-b", ""), ("x-c", "caf\xe9"))


def test_one_leading_empty_line_tolerated():
    conn = H1Connection()
    assert names(conn.receive_data(b"\r\n" + GET % b"")) == ["RequestReceived", "MessageComplete"]
    respond(conn, 1)
    assert names(conn.receive_data(b"\r")) == []
    assert names(conn.receive_data(b"\n" + GET % b"")) == ["RequestReceived", "MessageComplete"]


def test_stream_ids_and_keep_alive_http11():
    conn = H1Connection()
    for sid in (1, 3, 5):
        events = conn.receive_data(GET % b"")
        assert events[0].stream_id == sid
        out = respond(conn, sid)
        assert b"connection:" not in out
        assert not conn.closed


@pytest.mark.parametrize("value", [b"close", b"Close", b"keep-alive, close", b"foo,CLOSE"])
def test_http11_connection_close(value):
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: " + value + b"\r\n\r\n")
    out = respond(conn, 1)
    assert b"\r\nconnection: close\r\n" in out
    assert conn.closed


def test_http10_closes_by_default():
    conn = H1Connection()
    events = conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert events[0].http_version == "1.0" and events[0].authority == ""
    out = respond(conn, 1)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" in out
    assert conn.closed


def test_http10_keep_alive():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    out = respond(conn, 1)
    assert b"connection: keep-alive\r\n" in out
    assert not conn.closed
    assert conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")[0].stream_id == 3


def test_http10_streaming_response_is_close_delimited():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    conn.send_headers(1, 200, [("content-type", "text/plain")])
    conn.send_data(1, b"abc")
    conn.send_end(1)
    out = conn.data_to_send()
    assert b"transfer-encoding" not in out and b"content-length" not in out
    assert b"connection: close" in out and out.endswith(b"\r\n\r\nabc")
    assert conn.closed


def test_chunked_response_with_trailers():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [("content-type", "text/plain")])
    conn.send_data(1, b"hello ")
    conn.send_data(1, b"")
    conn.send_data(1, b"world")
    conn.send_end(1, (("x-checksum", "abc"),))
    out = conn.data_to_send()
    assert b"transfer-encoding: chunked\r\n" in out
    assert out.endswith(b"\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n")
    assert parse_responses(out)[0][2] == b"hello world"
    assert not conn.closed


def test_end_stream_on_headers_ends_exchange_with_zero_length():
    conn = H1Connection()
    conn.receive_data(GET % b"" + GET % b"2")
    conn.send_headers(1, 200, [("x-a", "b")], end_stream=True)
    assert b"content-length: 0\r\n" in conn.data_to_send()
    assert conn.next_events()[0].target == "/2"


def test_send_data_end_stream():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [("content-length", "2")])
    conn.send_data(1, b"ok", end_stream=True)
    assert conn.data_to_send().endswith(b"\r\n\r\nok") and conn.idle


def test_connection_owned_headers_dropped():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [("connection", "keep-alive"), ("transfer-encoding", "gzip"),
                               ("keep-alive", "timeout=5"), ("content-length", "0"),
                               ("server", "mine"), ("date", "D")], end_stream=True)
    out = conn.data_to_send()
    assert b"gzip" not in out and b"timeout" not in out and b"connection" not in out
    assert out.count(b"server:") == 1 and b"server: mine" in out and out.count(b"date:") == 1


def test_unknown_status_reason_empty():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 299, [], end_stream=True)
    assert conn.data_to_send().startswith(b"HTTP/1.1 299 \r\n")


@pytest.mark.parametrize("headers", [
    [("x-a", "b\r\nx-evil: 1")], [("x-a", "b\nc")], [("x-a", "b\rc")], [("x-a", "b\0c")],
    [("bad name", "v")], [("x:y", "v")], [("", "v")], [("content-length", "abc")],
    [("content-length", "-1")], [("x-a", "\u20ac")],
])
def test_invalid_response_headers_raise(headers):
    conn = H1Connection()
    conn.receive_data(GET % b"")
    with pytest.raises(LocalProtocolError):
        conn.send_headers(1, 200, headers)


def test_send_errors_are_local_protocol_errors():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    with pytest.raises(LocalProtocolError):
        conn.send_data(1, b"x")  # before headers
    with pytest.raises(LocalProtocolError):
        conn.send_headers(3, 200, [])  # wrong stream
    with pytest.raises(LocalProtocolError):
        conn.send_headers(1, 101, [])
    conn.send_headers(1, 200, [("content-length", "2")])
    with pytest.raises(LocalProtocolError):
        conn.send_headers(1, 200, [])
    with pytest.raises(LocalProtocolError):
        conn.send_data(1, b"abc")  # more than content-length


def test_short_body_closes_and_raises():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [("content-length", "5")])
    conn.send_data(1, b"ab")
    with pytest.raises(LocalProtocolError):
        conn.send_end(1)
    assert conn.closed


def test_head_response_has_framing_but_no_body():
    conn = H1Connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + GET % b"after")
    conn.send_headers(1, 200, [("content-length", "13")])
    conn.send_data(1, b"Hello, World!")
    conn.send_end(1)
    out = conn.data_to_send()
    assert out.endswith(b"content-length: 13\r\nserver: concurrency-lab\r\n\r\n")
    assert parse_responses(out, method="HEAD")[0][:2] == [200, {"content-length": "13", "server": "concurrency-lab"}]
    assert conn.next_events()[0].target == "/after"
    # streaming HEAD: no chunked framing, nothing written, keep-alive
    conn.send_headers(3, 200, [])
    respond_events = conn.data_to_send()
    assert b"content-length" in respond_events or b"transfer-encoding" in respond_events
    conn.send_end(3)


def test_head_streaming_response_has_no_chunked_body():
    conn = H1Connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.send_headers(1, 200, [("content-type", "text/plain")])
    conn.send_data(1, b"data")
    conn.send_end(1)
    out = conn.data_to_send()
    assert out.endswith(b"\r\n\r\n") and b"data" not in out and b"0\r\n\r\n" not in out[-7:-4]
    assert not conn.closed


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status):
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, status, [("content-length", "10")] if status == 304 else [("content-length", "0")])
    conn.send_data(1, b"0123456789")
    conn.send_end(1)
    out = conn.data_to_send()
    assert out.endswith(b"\r\n\r\n")
    assert (b"content-length" in out) == (status == 304)
    assert not conn.closed
    conn.receive_data(GET % b"")
    conn.send_headers(3, status, [], end_stream=True)
    assert b"content-length" not in conn.data_to_send()


def test_pipelining_three_requests_in_one_feed():
    conn = H1Connection()
    events = conn.receive_data(b"".join(GET % p for p in (b"1", b"2", b"3")))
    assert names(events) == ["RequestReceived", "MessageComplete"] and events[0].target == "/1"
    assert conn.next_events() == []  # #2 waits for the end of #1's response
    conn.send_headers(1, 200, [("content-length", "1")])
    conn.send_data(1, b"a")
    assert conn.next_events() == []
    conn.send_end(1)
    events = conn.next_events()
    assert events[0].target == "/2" and events[0].stream_id == 3
    assert conn.next_events() == []
    respond(conn, 3)
    events = conn.next_events()
    assert events[0].target == "/3" and events[0].stream_id == 5
    respond(conn, 5)
    assert conn.next_events() == [] and conn.idle


def test_pipelined_error_comes_after_previous_response():
    conn = H1Connection()
    events = conn.receive_data(GET % b"1" + b"GARBAGE\r\n\r\n")
    assert names(events) == ["RequestReceived", "MessageComplete"]
    assert conn.data_to_send() == b""
    first = respond(conn, 1, b"one")
    events = conn.next_events()
    assert events[-1].status == 400
    assert first.endswith(b"one") and conn.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert conn.closed


def test_pipelined_after_connection_close_ignored():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET % b"2")
    respond(conn, 1)
    assert conn.closed and conn.next_events() == []


def test_pipeline_buffer_bound_closes_after_response():
    conn = H1Connection(H1Config(max_pipeline_bytes=1000))
    conn.receive_data(GET % b"1")
    assert conn.receive_data(GET % b"x" * 100) == []
    out = respond(conn, 1)
    assert conn.closed and b"connection: close" in out


def test_content_length_body_events():
    conn = H1Connection()
    events = conn.receive_data(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
    assert names(events) == ["RequestReceived", "DataReceived"]
    assert events[0].end_stream is False and events[1].data == b"01234"
    assert conn.awaiting_head_bytes is False and conn.idle is False
    events = conn.receive_data(b"56789" + GET % b"next")
    assert names(events) == ["DataReceived", "MessageComplete"] and events[0].data == b"56789"
    respond(conn, 1, status=201)
    assert conn.next_events()[0].target == "/next"


def test_chunked_request_with_extensions_and_trailers():
    conn = H1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3;ext=1\r\nabc\r\n2\r\nde\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nX-B: u\r\n\r\n")
    assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == b"abcde0123456789"
    assert events[-1] == MessageComplete(stream_id=1, trailers=(("x-trailer", "t"), ("x-b", "u")))


def test_zero_content_length_is_no_body():
    conn = H1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert events[0].end_stream and names(events) == ["RequestReceived", "MessageComplete"]


def test_expect_100_continue_sent():
    conn = H1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n")
    assert events[0].expect_continue and names(events) == ["RequestReceived"]
    conn.send_informational(1, 100)
    assert conn.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert names(conn.receive_data(b"xyz")) == ["DataReceived", "MessageComplete"]
    respond(conn, 1, status=201)
    assert not conn.closed


def test_expect_100_refused_closes():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    out = respond(conn, 1, b"no", status=413)
    assert b"connection: close" in out and conn.closed


def test_expect_100_final_response_after_body_keeps_alive():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz")
    out = respond(conn, 1)
    assert b"connection" not in out and not conn.closed


def test_informational_not_sent_to_http10():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx")
    conn.send_informational(1, 103, (("link", "</a>"),))
    assert conn.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        conn.send_informational(1, 101)


def test_early_hints():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_informational(1, 103, (("link", "</s.css>; rel=preload"),))
    assert conn.data_to_send() == b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n"


def test_response_before_body_received_closes():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    out = respond(conn, 1, status=400)
    assert b"connection: close" in out and conn.closed


def test_h2c_upgrade_without_body():
    conn = H1Connection()
    events = conn.receive_data(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                               b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\nPRI * HTTP/2.0")
    (ev,) = events
    assert isinstance(ev, ProtocolSwitched) and ev.protocol == "h2c"
    assert ev.settings_header == "AAMAAABkAAQAAP__" and ev.body == b"" and ev.leftover == b"PRI * HTTP/2.0"
    assert ev.request.stream_id == 1 and ev.request.target == "/u" and ev.request.method == "GET"
    assert conn.data_to_send() == b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
    assert not conn.closed and conn.receive_data(b"more") == []


def test_h2c_upgrade_with_small_body_split():
    conn = H1Connection()
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade,http2-settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: \r\nContent-Length: 5\r\n\r\n")
    assert conn.receive_data(head + b"he") == []
    assert conn.awaiting_head_bytes
    (ev,) = conn.receive_data(b"lloXY")
    assert ev.body == b"hello" and ev.leftover == b"XY"


@pytest.mark.parametrize("head", [
    b"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n",  # no HTTP2-Settings option
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket\r\nHTTP2-Settings: AA\r\n",
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n",  # no settings
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: A\r\nHTTP2-Settings: B\r\n",
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\nContent-Length: 70000\r\n",
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\nTransfer-Encoding: chunked\r\n",
])
def test_h2c_upgrade_ignored(head):
    conn = H1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
    assert isinstance(events[0], RequestReceived)


def test_h2c_not_over_tls_or_when_disabled():
    req = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           b"HTTP2-Settings: AA\r\n\r\n")
    ev = H1Connection(scheme="https").receive_data(req)[0]
    assert isinstance(ev, RequestReceived) and ev.scheme == "https"
    assert isinstance(H1Connection(H1Config(h2c_upgrade=False)).receive_data(req)[0], RequestReceived)


def test_eof_idle_and_mid_request():
    conn = H1Connection()
    assert conn.receive_data(b"") == [ConnectionTerminated(remote=True, reason="EOF")]
    assert conn.closed
    conn = H1Connection()
    conn.receive_data(b"GET / HTT")
    assert conn.awaiting_head_bytes and not conn.idle
    assert conn.receive_data(b"") == [ConnectionTerminated(remote=True, reason="EOF mid-request")]
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
    assert conn.receive_data(b"")[-1].reason == "EOF mid-request" and conn.closed


def test_eof_after_complete_request_is_half_close():
    conn = H1Connection()
    conn.receive_data(GET % b"1" + GET % b"2")
    assert conn.receive_data(b"") == []
    assert not conn.closed
    respond(conn, 1)
    assert conn.next_events()[0].stream_id == 3
    respond(conn, 3)
    assert conn.next_events() == [ConnectionTerminated(remote=True, reason="EOF")]
    assert conn.closed


def test_start_shutdown_idle_and_in_flight():
    conn = H1Connection()
    conn.start_shutdown()
    assert conn.closed
    conn = H1Connection()
    conn.receive_data(GET % b"" + GET % b"2")
    conn.start_shutdown()
    assert not conn.closed
    out = respond(conn, 1)
    assert b"connection: close" in out and conn.closed and conn.next_events() == []


def test_reset_stream_closes():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [])
    conn.reset_stream(1, 2)
    assert conn.closed
    conn.send_data(1, b"ignored")  # after close: ignored, not raised
    assert b"ignored" not in conn.data_to_send()


def test_timeout_error_408_when_nothing_answered():
    conn = H1Connection()
    conn.set_date(DATE)
    conn.receive_data(b"GET / HTTP/1.1\r\nHo")
    assert conn.awaiting_head_bytes
    conn.send_timeout_error()
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"connection: close" in out
    assert conn.closed


def test_timeout_after_response_started_just_closes():
    conn = H1Connection()
    conn.receive_data(GET % b"")
    conn.send_headers(1, 200, [])
    conn.data_to_send()
    conn.timeout_response()
    assert conn.closed and conn.data_to_send() == b""


def test_error_while_body_and_response_started_only_closes():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.send_headers(1, 200, [])
    conn.data_to_send()
    events = conn.receive_data(b"zz\r\n")
    assert events[-1].status == 400 and conn.closed and conn.data_to_send() == b""


def test_max_send_size_large():
    assert H1Connection().max_send_size(1) >= 1 << 20


def test_server_header_configurable():
    conn = H1Connection(H1Config(server_header=""))
    conn.receive_data(GET % b"")
    assert b"server" not in respond(conn, 1)


def test_h11_parses_pipelined_responses():
    conn = H1Connection()
    conn.receive_data(GET % b"1" + GET % b"2")
    out = respond(conn, 1, b"one")
    conn.next_events()
    conn.send_headers(3, 200, [])
    conn.send_data(3, b"two")
    conn.send_end(3)
    out += conn.data_to_send()
    assert [r[2] for r in parse_responses(out, count=2)] == [b"one", b"two"]


def test_send_data_external_accounts_for_content_length_body():
    """A body the engine writes itself (sendfile) counts against content-length; the exchange
    ends cleanly and the connection is ready for the next request."""
    conn = H1Connection()
    sid = conn.receive_data(GET % b"a")[0].stream_id
    conn.send_headers(sid, 200, [("content-length", "10")])
    assert conn.send_data_external(sid, 10) is True
    conn.send_end(sid)
    assert conn.data_to_send().endswith(b"\r\n\r\n")
    assert not conn.closed
    assert isinstance(conn.receive_data(GET % b"b")[0], RequestReceived)


def test_send_data_external_refuses_chunked_and_head():
    conn = H1Connection()
    sid = conn.receive_data(GET % b"a")[0].stream_id
    conn.send_headers(sid, 200, [("content-type", "text/plain")])  # chunked framing
    assert conn.send_data_external(sid, 5) is False
    conn.send_data(sid, b"hello", end_stream=True)
    head = H1Connection()
    sid = head.receive_data(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")[0].stream_id
    head.send_headers(sid, 200, [("content-length", "5")])
    assert head.send_data_external(sid, 5) is False


def test_send_data_external_over_length_raises():
    conn = H1Connection()
    sid = conn.receive_data(GET % b"a")[0].stream_id
    with pytest.raises(LocalProtocolError):
        conn.send_data_external(sid, 1)
    conn.send_headers(sid, 200, [("content-length", "3")])
    with pytest.raises(LocalProtocolError):
        conn.send_data_external(sid, 4)


# -- send_response: a whole response in one call ------------------------------------------------

@pytest.mark.parametrize("request_bytes, headers, body", [
    (GET % b"a", [("content-type", "text/plain")], b"hello"),              # content-length added
    (GET % b"a", [("content-type", "text/plain")], b""),                   # content-length: 0
    (b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", [("content-length", "5")], b"hello"),  # body dropped
    (b"GET /a HTTP/1.0\r\n\r\n", [("content-type", "text/plain")], b"hello"),       # until close
    (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", [("content-length", "5")], b"hello"),
])
def test_send_response_equals_headers_data_end(request_bytes, headers, body):
    """The one-call path writes the same bytes and leaves the same state as the three calls."""
    out = []
    for whole in (True, False):
        conn = H1Connection()
        conn.set_date(DATE)
        (req, *_) = conn.receive_data(request_bytes)
        if whole:
            conn.send_response(req.stream_id, 200, headers, body)
        else:
            conn.send_headers(req.stream_id, 200, headers, end_stream=not body)
            if body:
                conn.send_data(req.stream_id, body)
                conn.send_end(req.stream_id)
        out.append((conn.data_to_send(), conn.closed))
    assert out[0] == out[1]


def test_send_response_rejects_a_body_longer_than_its_content_length():
    conn = H1Connection()
    (req, _) = conn.receive_data(GET % b"a")
    with pytest.raises(LocalProtocolError):
        conn.send_response(req.stream_id, 200, [("content-length", "2")], b"hello")


def test_cached_response_head_follows_the_connection_state():
    """A head identical to one sent before still gets ``connection: close`` once the connection
    is shutting down (the head cache is keyed by what the head depends on)."""
    conn = H1Connection()
    conn.set_date(DATE)
    headers = [("content-type", "text/plain"), ("content-length", "2")]
    (req, _) = conn.receive_data(GET % b"a")
    conn.send_response(req.stream_id, 200, headers, b"ok")
    first = conn.data_to_send()
    (req, _) = conn.receive_data(GET % b"a")
    conn.start_shutdown()
    conn.send_response(req.stream_id, 200, headers, b"ok")
    second = conn.data_to_send()
    assert b"connection: close" not in first.lower()
    assert b"connection: close" in second.lower() and conn.closed
    assert first.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n") == second


@pytest.mark.parametrize("head", [
    b"GET /cached?a=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    b"GET http://other.example:8080/abs HTTP/1.1\r\nHost: example.com\r\n\r\n",  # absolute-form: its authority
    b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"POST /up HTTP/1.0\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi",
])
def test_a_repeated_head_is_the_same_request_from_the_head_cache(head):
    from protocol import h1_parse

    h1_parse._head_caches.clear()  # the first parse below is a miss, the second a hit
    seen, heads = [], []
    for _ in range(2):
        conn = H1Connection()
        events = conn.receive_data(head)
        assert isinstance(events[0], RequestReceived)
        seen.append((events, [getattr(conn._req, s) for s in conn._req.__slots__]))
        heads.append(conn._req)
    assert seen[0] == seen[1]
    assert heads[0] is heads[1]  # the cached RequestHead itself (read-only, shared)
    (cache,) = h1_parse._head_caches.values()
    assert len(cache) == 1


def test_the_head_cache_holds_per_limits_and_never_skips_a_check():
    head = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n"
    assert isinstance(H1Connection().receive_data(head)[0], RequestReceived)  # cached under the defaults
    conn = H1Connection(H1Config(max_target_length=50))
    conn.receive_data(head)
    assert conn.data_to_send().startswith(b"HTTP/1.1 414 ")  # still too long under a lower limit


def test_the_head_cache_is_bounded():
    from protocol import h1_parse

    h1_parse._head_caches.clear()
    for i in range(h1_parse.HeadCache.MAX + 10):
        H1Connection().receive_data(GET % str(i).encode())
    (cache,) = h1_parse._head_caches.values()
    assert 0 < len(cache) <= h1_parse.HeadCache.MAX


def test_the_moves_written_in_place_are_moves_of_the_tables():
    """``_parse_head`` and ``send_response`` set the states of a keep-alive GET in place: each
    move must be one the transition tables allow."""
    from protocol.h1_states import RECV_TRANSITIONS as _RECV_TRANSITIONS
    from protocol.h1_states import SEND_TRANSITIONS as _SEND_TRANSITIONS
    from protocol.h1_states import Op as _Op
    from protocol.h1_states import Recv as _Recv
    from protocol.h1_states import Send as _Send
    assert _SEND_TRANSITIONS[(_Send.IDLE, _Op.REQUEST)] is _Send.WAIT
    assert _SEND_TRANSITIONS[(_SEND_TRANSITIONS[(_Send.BODY, _Op.DATA)], _Op.END)] is _Send.IDLE
    assert (_Recv.HEAD, _Recv.DONE) in _RECV_TRANSITIONS and (_Recv.DONE, _Recv.HEAD) in _RECV_TRANSITIONS
    conn = H1Connection()
    for _ in range(2):  # the second request runs on the state the first one's moves left
        (req, done) = conn.receive_data(GET % b"x")
        conn.send_response(req.stream_id, 200, [("content-length", "2")], b"ok")
        assert conn.data_to_send().endswith(b"\r\n\r\nok")
        assert (conn._send, conn._recv, conn.closed) == (_Send.IDLE, _Recv.HEAD, False)
