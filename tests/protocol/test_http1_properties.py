"""Property tests of the HTTP/1.x server connection: splitting never changes the events, random
input never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.events import DataReceived, MessageComplete
from protocol.http1 import H1Config, H1Connection

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
value = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789 ;=/,.", max_size=12).map(str.strip)
body = st.binary(max_size=40)


@st.composite
def request(draw) -> bytes:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
    path = "/" + draw(token)
    fields = draw(st.lists(st.tuples(token.map(lambda t: "x-" + t), value), max_size=4))
    lines = [f"{method} {path} HTTP/1.1", "Host: example.com"]
    lines += [f"{n}: {v}" for n, v in fields]
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    payload = b""
    if kind == "length":
        data = draw(body)
        lines.append(f"Content-Length: {len(data)}")
        payload = data
    elif kind == "chunked":
        lines.append("Transfer-Encoding: chunked")
        for piece in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
            ext = draw(st.sampled_from(["", ";a=b", ";x", ' ; q="v w"']))
            payload += b"%x%s\r\n%s\r\n" % (len(piece), ext.encode(), piece)
        payload += b"0\r\n"
        if draw(st.booleans()):
            payload += b"X-Trailer: t\r\n"
        payload += b"\r\n"
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if draw(st.booleans()):
        head = b"\r\n" + head
    return head + payload


def drive(pieces: list[bytes]) -> list:
    """Feed ``pieces``; answer each request once its message is complete; return merged events."""
    conn = H1Connection(H1Config())
    events: list = []

    def handle(new):
        pending = list(new)
        while pending:
            e = pending.pop(0)
            events.append(e)
            if isinstance(e, MessageComplete):
                conn.send_headers(e.stream_id, 200, [("content-length", "2")])
                conn.send_data(e.stream_id, b"ok")
                conn.send_end(e.stream_id)
                pending.extend(conn.next_events())

    for piece in pieces:
        handle(conn.receive_data(piece))
    handle(conn.receive_data(b""))
    merged: list = []
    for e in events:
        if isinstance(e, DataReceived) and merged and isinstance(merged[-1], DataReceived) \
                and merged[-1].stream_id == e.stream_id:
            merged[-1] = DataReceived(stream_id=e.stream_id, data=merged[-1].data + e.data)
        else:
            merged.append(e)
    return merged


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    return [p for p in pieces if p]  # b"" would mean EOF


@settings(max_examples=300, deadline=None)
@given(st.lists(request(), min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_gives_same_events(requests, cuts):
    data = b"".join(requests)
    whole = drive([data])
    assert sum(isinstance(e, MessageComplete) for e in whole) == len(requests)
    assert drive(split(data, cuts)) == whole
    assert drive([bytes([b]) for b in data]) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=6))
def test_random_bytes_never_raise(data, cuts):
    drive(split(data, cuts))


@settings(max_examples=200, deadline=None)
@given(st.lists(request(), min_size=1, max_size=2), st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_corrupted_requests_never_raise(requests, where, junk):
    data = b"".join(requests)
    where %= len(data) + 1
    drive([data[:where] + junk + data[where:]])
