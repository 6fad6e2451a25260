"""RFC 9113 by the letter where an outside differential (seeded mutations of h2c exchanges sent to
nghttpd, hypercorn and the lab) found the lab serving what nghttp2 and h2 refuse; and the
property behind them: a stream the server has reset is never served, and it never writes a frame on
it again. In memory, raw frames built with hyperframe (tests/protocol/h2_support.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import events as ev
from protocol.errors import ErrorCode as E
from protocol.errors import LocalProtocolError

from h2_support import (REQ, DataFrame, GoAwayFrame, HeadersFrame, PriorityFrame, RstStreamFrame, ServerPeer,
                        WindowUpdateFrame, parse_frames, raw)


def _served(p: ServerPeer, sid: int) -> bool:
    return any(isinstance(e, ev.RequestReceived) and e.stream_id == sid for e in p.events)


def test_priority_on_itself_then_headers_is_never_served():
    """The differential's first case: PRIORITY making idle stream 1 depend on itself, then
    HEADERS on 1. Both references answer GOAWAY(PROTOCOL_ERROR); the lab once sent RST_STREAM on
    the idle stream (§6.4 forbids it) and then served the stream it had reset (§5.1)."""
    p = ServerPeer()
    p.send(PriorityFrame(1, depends_on=1, stream_weight=16), p.headers(1))
    frames = p.read()
    assert not [f for f in frames if isinstance(f, RstStreamFrame)], frames
    assert not [f for f in frames if isinstance(f, (HeadersFrame, DataFrame)) and f.stream_id == 1], frames
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaway and goaway[-1].error_code == E.PROTOCOL_ERROR and goaway[-1].last_stream_id == 0
    assert not _served(p, 1) and p.server.closed


def test_priority_on_itself_for_an_open_stream_closes_the_connection_too():
    p = ServerPeer()
    p.send(p.headers(1, end_stream=False))
    p.send(PriorityFrame(1, depends_on=1, stream_weight=16))
    p.expect_connection_error(E.PROTOCOL_ERROR)


def test_a_stream_error_on_an_idle_stream_is_the_connections():
    """A PRIORITY of the wrong length is a stream error (§6.3); on an idle stream RST_STREAM may
    not be sent (§6.4): GOAWAY(FRAME_SIZE_ERROR) instead, and no RST_STREAM."""
    p = ServerPeer()
    p.send(raw(0x2, 0, 5, b"\x00\x00\x00\x00"))
    frames = p.read()
    assert not [f for f in frames if isinstance(f, RstStreamFrame)]
    assert [f.error_code for f in frames if isinstance(f, GoAwayFrame)] == [E.FRAME_SIZE_ERROR]


def _request(p: ServerPeer, sid: int, fields) -> None:
    p.send(HeadersFrame(sid, data=p.block(fields), flags=["END_STREAM", "END_HEADERS"]))


def test_an_empty_host_beside_authority_is_malformed():
    """§8.3.1: a Host that differs from :authority SHOULD make the request malformed; an empty one
    differs. nghttpd resets the stream, hypercorn (h2) closes the connection: the lab resets."""
    p = ServerPeer()
    _request(p, 1, REQ + [("host", "")])
    p.expect_stream_error(1, E.PROTOCOL_ERROR)
    assert not _served(p, 1)
    p.expect_ping_ack()  # the other streams go on


def test_a_request_with_neither_authority_nor_host_is_malformed():
    p = ServerPeer()
    _request(p, 1, [(":method", "GET"), (":scheme", "http"), (":path", "/")])
    p.expect_stream_error(1, E.PROTOCOL_ERROR)
    assert not _served(p, 1)


def test_host_against_authority():
    p = ServerPeer()
    _request(p, 1, REQ + [("host", "other.example")])            # differs
    p.expect_stream_error(1, E.PROTOCOL_ERROR)
    _request(p, 3, REQ + [("host", "EXAMPLE.com")])              # the same, case aside: served
    _request(p, 5, [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("host", "h.example")])  # Host only
    _request(p, 7, REQ + [("host", "example.com"), ("host", "example.com")])  # two Host fields
    p.expect_stream_error(7, E.PROTOCOL_ERROR)
    assert not _served(p, 1) and _served(p, 3) and _served(p, 5) and not _served(p, 7)
    five = [e for e in p.events if isinstance(e, ev.RequestReceived) and e.stream_id == 5][0]
    assert five.authority == "h.example"


# -- the property: nothing is served on, or written to, a stream the server reset ------------------

SIDS = (1, 3, 5)
_frame = st.one_of(
    st.builds(lambda sid, es: ("headers", sid, es), st.sampled_from(SIDS), st.booleans()),
    st.builds(lambda sid: ("bad headers", sid), st.sampled_from(SIDS)),
    st.builds(lambda sid, dep: ("priority", sid, dep), st.sampled_from(SIDS), st.sampled_from(SIDS)),
    st.builds(lambda sid, es: ("headers prio self", sid, es), st.sampled_from(SIDS), st.booleans()),
    st.builds(lambda sid, es: ("data", sid, es), st.sampled_from(SIDS), st.booleans()),
    st.builds(lambda sid: ("rst", sid), st.sampled_from(SIDS)),
    st.builds(lambda sid: ("window", sid), st.sampled_from(SIDS)),
    st.builds(lambda sid: ("short priority", sid), st.sampled_from(SIDS)),
)


def _build(p: ServerPeer, op: tuple) -> bytes:
    kind, sid = op[0], op[1]
    if kind == "headers":
        return p.headers(sid, end_stream=op[2]).serialize()
    if kind == "bad headers":  # uppercase name: malformed (§8.2.1), a stream error
        return p.headers(sid, REQ + [("X-Upper", "1")]).serialize()
    if kind == "priority":
        return PriorityFrame(sid, depends_on=op[2], stream_weight=16).serialize()
    if kind == "headers prio self":
        flags = ["END_HEADERS", "PRIORITY"] + (["END_STREAM"] if op[2] else [])
        return HeadersFrame(sid, data=p.block(), flags=flags, depends_on=sid, stream_weight=16).serialize()
    if kind == "data":
        return DataFrame(sid, data=b"x", flags=["END_STREAM"] if op[2] else []).serialize()
    if kind == "rst":
        return RstStreamFrame(sid, error_code=E.CANCEL).serialize()
    if kind == "window":
        return WindowUpdateFrame(sid, window_increment=1).serialize()
    return raw(0x2, 0, sid, b"\x00\x00\x00")  # a PRIORITY of 3 octets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_frame, min_size=1, max_size=12), st.booleans())
def test_no_frame_is_sent_and_no_request_served_on_a_stream_after_its_reset(ops, answer_late):
    """Any sequence of these frames, the application answering every request it is given (at once,
    or after the next frame): after the server sends RST_STREAM on a stream it writes nothing more
    on it and reports no request on it; it never resets an idle stream (§6.4); after a GOAWAY for
    a connection error it reports no request at all."""
    p = ServerPeer()
    reset: set[int] = set()
    highest = 0  # a stream id at or below the highest one opened is not idle (§5.1.1)
    written: list = []
    dead = False
    pending: list[int] = []

    def answer(sids: list[int]) -> None:
        for sid in sids:
            try:
                p.respond(sid, b"ok")
            except LocalProtocolError:  # the stream ended meanwhile: the application's error to see
                pass

    for op in ops:
        if op[0] in ("headers", "bad headers", "headers prio self"):
            highest = max(highest, op[1])
        new = p.send(_build(p, op))
        if dead:
            assert not new, new
        for e in new:
            if isinstance(e, ev.RequestReceived):
                assert e.stream_id not in reset, (ops, e)
                pending.append(e.stream_id)
        if not answer_late:
            answer(pending)
            pending = []
        frames = parse_frames(p.server.data_to_send())
        written += frames
        for f in frames:
            if f.stream_id in reset:
                raise AssertionError(f"{type(f).__name__} on stream {f.stream_id} after our RST_STREAM: {ops}")
            if isinstance(f, RstStreamFrame):
                assert f.stream_id <= highest, f"RST_STREAM on idle stream {f.stream_id}: {ops}"
                reset.add(f.stream_id)
            if isinstance(f, GoAwayFrame) and f.error_code != E.NO_ERROR:
                dead = True
        if answer_late:
            answer(pending)
            pending = []
            frames = parse_frames(p.server.data_to_send())
            for f in frames:
                assert f.stream_id not in reset, (ops, f)
                if isinstance(f, RstStreamFrame):
                    reset.add(f.stream_id)


# -- rows of docs/http2.md's table that no other test held ------------------------------------------

def test_5_1_half_closed_local_still_receives_the_request_body():
    """We answered before the request ended: our side is closed (half-closed (local), §5.1), the
    peer's DATA and END_STREAM are still accepted."""
    p = ServerPeer()
    p.send(*p.post(1, end_stream=False))
    p.respond(1, b"early")
    p.read()
    evs = p.send(DataFrame(1, data=b"rest", flags=["END_STREAM"]))
    assert [type(e).__name__ for e in evs] == ["DataReceived", "MessageComplete"], evs
    p.expect_ping_ack()


@pytest.mark.parametrize("fields", [
    REQ + [("x:y", "1")],                      # §8.2.1: a colon in a regular field name
    REQ + [("x-nul", "a\x00b")],               # §8.2.1: NUL in a value
    REQ + [("x-tab", "ok\t")],                 # §8.2.1: trailing HTAB
    [(":Method", "GET")] + REQ[1:],            # §8.3: an uppercase pseudo-header is an unknown one
    [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "user@example.com")],  # §8.3.1
    [(":method", "GET"), (":scheme", "http"), (":path", "*"), (":authority", "example.com")],  # * only for OPTIONS
    REQ + [("content-length", "1x")],          # §8.1.1: content-length that is not a number
], ids=["colon_in_name", "nul_in_value", "trailing_tab", "uppercase_pseudo", "userinfo", "asterisk_get",
        "content_length_not_a_number"])
def test_more_malformed_requests_are_stream_errors(fields):
    p = ServerPeer()
    p.send(HeadersFrame(1, data=p.block(fields), flags=["END_STREAM", "END_HEADERS"]))
    p.expect_stream_error(1, E.PROTOCOL_ERROR)
    assert not _served(p, 1)


def test_options_asterisk_is_served():
    p = ServerPeer()
    p.send(HeadersFrame(1, data=p.block([(":method", "OPTIONS"), (":scheme", "http"), (":path", "*"),
                                         (":authority", "example.com")]), flags=["END_STREAM", "END_HEADERS"]))
    assert _served(p, 1)
