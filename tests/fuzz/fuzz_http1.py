#!/usr/bin/env python3
"""atheris (libFuzzer) target: the HTTP/1.x server connection (``protocol.http1.H1Connection``).

Each input is split into a byte stream and cut points. The stream is fed whole and then in the
pieces the cuts make, answering every complete request (as the session does) so the send side and
pipelining run too. A crash is: any exception escaping ``receive_data`` (only protocol errors may
be *reported*, as events and an error response; nothing may be raised), or the split changing the
events or the bytes written (parsing must not depend on how TCP cut the stream).

Run (outside CI; ``pip install -r tests/fuzz/requirements.txt``)::

    python tests/fuzz/fuzz_http1.py -max_total_time=300 tests/fuzz/corpus_http1/

A crash leaves ``crash-<sha1>`` in the working directory; reproduce it with
``python tests/fuzz/fuzz_http1.py crash-<sha1>`` and keep it as a regression test in
tests/protocol/test_fuzz_regressions.py.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

with atheris.instrument_imports():
    from protocol import events as ev
    from protocol.http1 import H1Config, H1Connection

CONFIG = H1Config(max_target_length=256, max_header_bytes=1024, max_body_size=4096,
                  max_pipeline_bytes=2048)
SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
]


def drive(pieces: list[bytes]) -> tuple[list, bytes]:
    """Feed ``pieces`` then EOF, answering each complete request; ``(events, bytes written)``."""
    conn = H1Connection(CONFIG)
    events: list = []
    out = b""

    def handle(new: list) -> None:
        pending = list(new)
        while pending:
            e = pending.pop(0)
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
            # The rest of the stream belongs to HTTP/2: the upgrade hands it on as ``leftover``
            # of the receive that completed the request, and later reads go to the new protocol.
            sw = events[-1]
            rest = sw.leftover + b"".join(pieces[i + 1:])
            events[-1] = ev.ProtocolSwitched(protocol=sw.protocol, settings_header=sw.settings_header,
                                             request=sw.request, body=sw.body, leftover=rest)
            return merge(events), out
    handle(conn.receive_data(b""))
    out += conn.data_to_send()
    return merge(events), out


def merge(events: list) -> list:
    """Adjacent DataReceived of one stream joined (how a body is cut is not an event)."""
    merged: list = []
    for e in events:
        if isinstance(e, ev.DataReceived) and merged and isinstance(merged[-1], ev.DataReceived) \
                and merged[-1].stream_id == e.stream_id:
            merged[-1] = ev.DataReceived(stream_id=e.stream_id, data=merged[-1].data + e.data)
        else:
            merged.append(e)
    return merged


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (taken modulo its length), without empty pieces."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    return [p for p in pieces if p]


def one_input(buf: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(buf)
    cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)] if fdp.ConsumeBool() else b""
    data = seed + fdp.ConsumeBytes(fdp.remaining_bytes())
    if not data:
        return
    whole = drive([data])
    pieces = drive(split(data, cuts))
    if pieces != whole:
        raise AssertionError(f"split changed the result:\n{whole}\n{pieces}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
