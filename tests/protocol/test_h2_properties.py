"""Property tests: chunking never changes what the HTTP/2 roles see, and no input makes them raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from h2_support import GoAwayFrame, parse_frames, raw
from protocol import H2ClientConnection, H2Connection
from protocol import events as ev
from h2_support import encode_header_block

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = raw(0x4, 0, 0, b"\x00\x04\x00\x01\x00\x00")
REQ_BLOCK = encode_header_block([(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/"),
                                 (b":authority", b"a")])


def _client_stream() -> bytes:
    """A realistic client byte stream: preface, settings, requests with bodies and trailers, pings."""
    c = H2ClientConnection()
    for i in range(6):
        sid = c.send_request("POST", f"/p/{i}", "lab", headers=[("x-n", str(i)), ("content-length", str(100 * i))],
                             body=b"b" * (100 * i), end_stream=i % 2 == 0)
        if i % 2:
            c.send_end(sid, [("x-trailer", str(i))])
    c.ping(b"pingpong")
    c.send_request("GET", "/", "lab")
    return c.data_to_send()


CLIENT_BYTES = _client_stream()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return [c for c in out if c]


def _feed(conn, chunks):
    events, out = [], b""
    for chunk in chunks:
        events += conn.receive_data(chunk)
        out += conn.data_to_send()
    return events, out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=30))
def test_any_split_of_a_client_stream_gives_the_same_server_events(cuts):
    whole_events, whole_out = _feed(H2Connection(), [CLIENT_BYTES])
    events, out = _feed(H2Connection(), _split(CLIENT_BYTES, cuts))
    assert events == whole_events
    assert out == whole_out
    assert len([e for e in events if isinstance(e, ev.RequestReceived)]) == 7


def _server_stream() -> tuple[H2ClientConnection, bytes]:
    c, s = H2ClientConnection(), H2Connection()
    sids = [c.send_request("GET", f"/{i}", "lab") for i in range(5)]
    s.receive_data(c.data_to_send())
    for i, sid in enumerate(sids):
        s.send_informational(sid, 103, [("link", "</x>")]) if i == 0 else None
        s.send_headers(sid, 200, [("content-type", "text/plain"), ("x-i", str(i))])
        s.send_data(sid, b"r" * (1000 * i))
        s.send_end(sid, [("x-t", "1")] if i == 4 else ())
    s.ping(b"12345678")
    return c, s.data_to_send()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=30))
def test_any_split_of_a_server_stream_gives_the_same_client_events(cuts):
    c1, data = _server_stream()
    whole_events, whole_out = _feed(c1, [data])
    c2, data2 = _server_stream()
    events, out = _feed(c2, _split(data2, cuts))
    assert events == whole_events and out == whole_out
    assert len([e for e in events if isinstance(e, ev.MessageComplete)]) == 5


_frame = st.one_of(
    st.builds(raw, st.integers(0, 12), st.integers(0, 255), st.sampled_from([0, 1, 2, 3, 5, 7, 2**31 - 1]),
              st.binary(max_size=40)),
    st.builds(lambda sid, flags: raw(0x1, flags, sid, REQ_BLOCK), st.sampled_from([1, 3, 5, 7, 9]),
              st.sampled_from([0x4, 0x5, 0x0, 0x1])),
    st.builds(lambda sid, data, flags: raw(0x0, flags, sid, data), st.sampled_from([1, 3, 5]),
              st.binary(max_size=20), st.sampled_from([0, 1])),
    st.builds(lambda sid, n: raw(0x8, 0, sid, n.to_bytes(4, "big")), st.sampled_from([0, 1, 3]),
              st.integers(0, 2**31 - 1)),
    st.just(raw(0x9, 0x4, 1, b"")),
    st.just(SETTINGS),
)


def _check_answered(conn, events, out):
    assert all(isinstance(e, ev.Event) for e in events)
    if conn.closed:
        term = [e for e in events if isinstance(e, ev.ConnectionTerminated)]
        if term and not term[-1].remote:
            assert any(isinstance(f, GoAwayFrame) for f in parse_frames(out))
    else:
        parse_frames(out)  # whatever we sent is well-formed


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame, max_size=25), st.lists(st.integers(0, 10**4), max_size=5))
def test_random_frames_never_raise_in_the_server(frames, cuts):
    conn = H2Connection()
    data = PREFACE + SETTINGS + b"".join(frames)
    events, out = _feed(conn, _split(data, cuts))
    _check_answered(conn, events, out)


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame, max_size=25))
def test_random_frames_never_raise_in_the_client(frames):
    conn = H2ClientConnection()
    for _ in range(3):
        conn.send_request("POST", "/", "a", end_stream=False)
    conn.data_to_send()
    events, out = _feed(conn, [SETTINGS + b"".join(frames)])
    _check_answered(conn, events, out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    for conn, prefix in ((H2Connection(), b""), (H2Connection(), PREFACE), (H2ClientConnection(), b"")):
        conn.data_to_send()
        events = conn.receive_data(prefix + data)
        assert all(isinstance(e, ev.Event) for e in events)
