"""Properties the atheris targets (tests/fuzz/fuzz_http1.py, fuzz_h2.py) check, as hypothesis tests
that run in CI, over *hostile* input: request smuggling framings (RFC 9112 §6.1, §6.3, §7.1),
whitespace and line-end tricks, and random HTTP/2 frames. Only protocol errors come out (as
events and an error response; nothing is raised), and any split of the same bytes gives the same
events and the same bytes written. Inputs the fuzzers reported are kept at the end.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from h2_support import raw
from protocol import H2Connection
from protocol import events as ev
from protocol.http1 import H1Config, H1Connection

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = raw(0x4, 0, 0, b"\x00\x04\x00\x01\x00\x00")
CONFIG = H1Config(max_target_length=256, max_header_bytes=1024, max_body_size=4096, max_pipeline_bytes=2048)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (modulo its length), without empty pieces (b"" would be EOF)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [p for p in (data[a:b] for a, b in zip([0, *points], [*points, len(data)])) if p]


def h1_drive(pieces: list[bytes]) -> tuple[list, bytes]:
    """Feed ``pieces`` then EOF into a server connection, answering each complete request;
    ``(events with adjacent body pieces joined, bytes written)``. Raises whatever escapes."""
    conn = H1Connection(CONFIG)
    events: list = []
    out = b""

    def handle(new: list) -> None:
        pending = list(new)
        while pending:
            e = pending.pop(0)
            assert isinstance(e, ev.Event)
            events.append(e)
            if isinstance(e, ev.MessageComplete) and not conn.closed:
                conn.send_headers(e.stream_id, 200, [("content-length", "2")])
                conn.send_data(e.stream_id, b"ok")
                conn.send_end(e.stream_id)
                pending.extend(conn.next_events())

    for i, piece in enumerate(pieces):
        handle(conn.receive_data(piece))
        out += conn.data_to_send()
        if events and isinstance(events[-1], ev.ProtocolSwitched):
            sw = events[-1]  # the rest of the stream is HTTP/2's: compare it whole
            events[-1] = ev.ProtocolSwitched(protocol=sw.protocol, settings_header=sw.settings_header,
                                             request=sw.request, body=sw.body,
                                             leftover=sw.leftover + b"".join(pieces[i + 1:]))
            break
    else:
        handle(conn.receive_data(b""))
        out += conn.data_to_send()
    merged: list = []
    for e in events:
        if isinstance(e, ev.DataReceived) and merged and isinstance(merged[-1], ev.DataReceived):
            merged[-1] = ev.DataReceived(stream_id=e.stream_id, data=merged[-1].data + e.data)
        else:
            merged.append(e)
    return merged, out


_FRAMING = st.sampled_from([
    b"Content-Length: 3", b"Content-Length: 3\r\nContent-Length: 3", b"Content-Length: 3\r\nContent-Length: 4",
    b"Content-Length: 3, 3", b"Content-Length: +3", b"Content-Length: 0x3", b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked\r\nContent-Length: 3",
    b"Content-Length: 3\r\nTransfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, gzip", b"Transfer-Encoding : chunked", b"Transfer-Encoding:\tchunked",
    b" Transfer-Encoding: chunked", b"Transfer-Encoding:\r\n chunked", b"Transfer-Encoding: \x0bchunked",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", b"Expect: 100-continue\r\nContent-Length: 3",
    b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__", b"",
])
_BODY = st.sampled_from([
    b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n", b"FFFFFFFFFFFFFFFFF\r\nabc\r\n",
    b"3\nabc\n0\n\n", b"-3\r\nabc\r\n0\r\n\r\n", b"3\r\nabcd\r\n0\r\n\r\n", b"0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", b"",
])
_EOL = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


@st.composite
def hostile_request(draw) -> bytes:
    """A request with an ambiguous or malformed framing, line ends sometimes bare."""
    eol = draw(_EOL)
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"BREW"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"]))
    head = b"%s /%s %s\r\nHost: a\r\n%s" % (method, draw(st.sampled_from([b"", b"x", b"%2e%2e/"])), version,
                                           draw(_FRAMING))
    return head.replace(b"\r\n", eol) + b"\r\n\r\n" + draw(_BODY)


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_request(), min_size=1, max_size=3), st.lists(st.integers(min_value=0), max_size=10))
@example([b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n\xef\xf7\t\xf7++"], [101])  # fuzz_http1: h2c + leftover
def test_http1_hostile_framing_any_split_same_events_and_answer(requests, cuts):
    data = b"".join(requests)
    whole = h1_drive([data])
    assert h1_drive(split(data, cuts)) == whole
    assert h1_drive([data[i:i + 1] for i in range(len(data))]) == whole


def h2_feed(pieces: list[bytes]) -> tuple[list, bytes]:
    """Feed ``pieces`` into a server connection without answering; ``(events, bytes written)``."""
    conn = H2Connection()
    events, out = [], conn.data_to_send()
    for piece in pieces:
        new = conn.receive_data(piece)
        assert all(isinstance(e, ev.Event) for e in new)
        events += new
        out += conn.data_to_send()
    return events, out


_BLOCK = bytes.fromhex("8386") + b"\x84" + b"\x41\x01a" + b"\x5c\x013"  # POST http / a content-length: 3
_FRAME = st.one_of(
    st.builds(raw, st.integers(0, 12), st.integers(0, 255), st.sampled_from([0, 1, 3, 5, 2**31 - 1]),
              st.binary(max_size=30)),
    st.builds(lambda sid, flags: raw(0x1, flags, sid, _BLOCK), st.sampled_from([1, 3, 5]), st.sampled_from([0x4, 0x5, 0x0])),
    st.builds(lambda sid, flags: raw(0x9, flags, sid, _BLOCK[:3]), st.sampled_from([1, 3]), st.sampled_from([0, 4])),
    st.builds(lambda sid, data, flags: raw(0x0, flags, sid, data), st.sampled_from([1, 3]),
              st.sampled_from([b"", b"abc", b"\x02ab\x00\x00"]), st.sampled_from([0, 1, 8, 9])),
    st.builds(lambda sid: raw(0x3, 0, sid, b"\x00\x00\x00\x08"), st.sampled_from([1, 3, 5])),
    st.builds(lambda sid, n: raw(0x8, 0, sid, n.to_bytes(4, "big")), st.sampled_from([0, 1]), st.integers(0, 2**31 - 1)),
    st.just(raw(0x6, 0, 0, b"12345678")), st.just(SETTINGS),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAME, max_size=30), st.lists(st.integers(0, 10**4), max_size=8))
def test_h2_random_frames_any_split_same_events_and_answer(frames, cuts):
    data = PREFACE + SETTINGS + b"".join(frames)
    whole = h2_feed([data])
    assert h2_feed(split(data, cuts)) == whole
    assert h2_feed([data[i:i + 1] for i in range(len(data))]) == whole


def test_fuzz_h2_a_stream_answered_between_reads_then_data_is_a_connection_error():
    """Reported by fuzz_h2 (crash-a8699b77, a finding of the harness, not a bug): DATA after a
    request's END_STREAM is a *stream* error STREAM_CLOSED while the stream is half-closed
    (remote), but a *connection* error once our answer has closed it (RFC 9113 §5.1): the
    outcome depends on when the application answered, so splits are compared without answers."""
    block = raw(0x1, 0x4, 1, _BLOCK) + raw(0x0, 0x1, 1, b"abc")
    late = raw(0x0, 0x0, 1, b"x")
    conn = H2Connection()
    conn.receive_data(PREFACE + SETTINGS + block)
    events = conn.receive_data(late)
    assert [type(e) for e in events] == [ev.StreamReset] and not conn.closed
    conn = H2Connection()
    conn.receive_data(PREFACE + SETTINGS + block)
    conn.send_headers(1, 200, [], end_stream=True)
    events = conn.receive_data(late)
    assert isinstance(events[-1], ev.ConnectionTerminated) and conn.closed
