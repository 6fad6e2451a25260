#!/usr/bin/env python3
"""atheris (libFuzzer) target: the HTTP/2 frame layer, server role (``protocol.H2Connection``)
and client role (``protocol.H2ClientConnection``).

The server gets the client preface and a SETTINGS frame, then the fuzzer's bytes, whole and then
cut into pieces; every request is answered (HEADERS, DATA within the flow-control window, END) so
the send side, flow control and stream states are exercised. A crash is: any exception escaping
(``receive_data`` reports peer errors as RST_STREAM/GOAWAY and events, never raises), output that
is not well-formed frames, a connection error without a GOAWAY, or the split changing the events.
The client role gets the same bytes after opening three streams.

Run (outside CI; ``pip install -r tests/fuzz/requirements.txt``)::

    python tests/fuzz/fuzz_h2.py -max_total_time=300 tests/fuzz/corpus_h2/

Reproduce a crash with ``python tests/fuzz/fuzz_h2.py crash-<sha1>``; keep it as a regression test
in tests/protocol/test_fuzz_regressions.py.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

with atheris.instrument_imports():
    import hpack
    from protocol import H2ClientConnection, H2Connection
    from protocol import events as ev
    from protocol.errors import LocalProtocolError

from hyperframe.frame import Frame, GoAwayFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x00\x01\x00\x00"


def frame(type_: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((type_, flags)) + sid.to_bytes(4, "big") + payload


_BLOCK = hpack.Encoder().encode([(":method", "POST"), (":scheme", "http"), (":path", "/"),
                                 (":authority", "a"), ("content-length", "3")])
SEEDS = [
    frame(1, 0x4, 1, _BLOCK) + frame(0, 1, 1, b"abc"),
    frame(1, 0x0, 1, _BLOCK[:5]) + frame(9, 0x4, 1, _BLOCK[5:]) + frame(0, 1, 1, b"abc"),
    frame(1, 0x4, 1, _BLOCK) + frame(3, 0, 1, b"\x00\x00\x00\x08"),
    frame(6, 0, 0, b"12345678") + frame(8, 0, 0, b"\x00\x00\x10\x00") + frame(7, 0, 0, b"\x00" * 8),
]


def parse_frames(data: bytes) -> list:
    frames = []
    mv = memoryview(data)
    while mv:
        f, length = Frame.parse_frame_header(mv[:9])
        f.parse_body(mv[9:9 + length])
        frames.append(f)
        mv = mv[9 + length:]
    return frames


def serve(pieces: list[bytes], answer: bool = True) -> tuple[list, bytes, bool]:
    """Server role: feed pieces, answering requests as they complete when ``answer``;
    ``(events, bytes written, closed)``. (Answering closes streams, which changes how later
    frames on them are treated, RFC 9113 §5.1: the split comparison runs without answers.)"""
    conn = H2Connection()
    events: list = []
    out = conn.data_to_send()
    for piece in pieces:
        new = conn.receive_data(piece)
        events += new
        for e in new:
            if answer and isinstance(e, ev.MessageComplete):
                try:
                    conn.send_headers(e.stream_id, 200, [("content-type", "text/plain")])
                    n = min(conn.max_send_size(e.stream_id), 100)
                    conn.send_data(e.stream_id, b"x" * n)
                    conn.send_end(e.stream_id)
                except LocalProtocolError:
                    pass  # the stream was reset meanwhile: refused, as the glue would be
        out += conn.data_to_send()
    return events, out, conn.closed


def check(events: list, out: bytes, closed: bool) -> None:
    assert all(isinstance(e, ev.Event) for e in events)
    frames = parse_frames(out)  # well-formed
    term = [e for e in events if isinstance(e, ev.ConnectionTerminated)]
    if closed and term and not term[-1].remote:
        assert any(isinstance(f, GoAwayFrame) for f in frames), "connection error without GOAWAY"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    return [p for p in pieces if p]


def one_input(buf: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(buf)
    cuts = [fdp.ConsumeIntInRange(0, 8192) for _ in range(fdp.ConsumeIntInRange(0, 6))]
    seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)] if fdp.ConsumeBool() else b""
    body = seed + fdp.ConsumeBytes(fdp.remaining_bytes())
    data = PREFACE + SETTINGS + body
    check(*serve(split(data, cuts)))
    whole = serve([data], answer=False)
    check(*whole)
    pieces = serve(split(data, cuts), answer=False)
    check(*pieces)
    if pieces[0] != whole[0]:
        raise AssertionError(f"split changed the events:\n{whole[0]}\n{pieces[0]}")
    client = H2ClientConnection()
    for _ in range(3):
        client.send_request("POST", "/", "a", end_stream=False)
    client.data_to_send()
    events = client.receive_data(SETTINGS + body)
    check(events, client.data_to_send(), client.closed)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
