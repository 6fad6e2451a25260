"""Every inlined fast path of the HTTP/2 server against its checked path, on the same input: the
same bytes out, the same events, the same stream states and windows.

- ``H2Connection.send_response`` (one HEADERS + one DATA packed inline, the states by ``SEND_WHOLE``)
  against ``send_headers`` + ``send_data(end_stream=True)`` (``header_block_frames``,
  ``data_frames``, ``_transition`` through ``TRANSITIONS``);
- ``_on_headers``' bare-block path (END_HEADERS, no PADDED, no PRIORITY: the payload is the block)
  against the same block sent PADDED (pad length 0) and split over CONTINUATION frames;
- the decoded-block cache (a second identical block is not decoded again) against a fresh
  connection that decodes it;
- ``SEND_WHOLE`` against the two rows of ``TRANSITIONS`` it composes.
"""

from __future__ import annotations

import pytest
from hyperframe.frame import ContinuationFrame, HeadersFrame

from h2_support import REQ, ServerPeer
from protocol import events as ev
from protocol.h2_streams import CAN_SEND, SEND_WHOLE, TRANSITIONS, StreamInput


def _state(peer: ServerPeer) -> dict:
    """What the fast and the checked path must leave alike."""
    conn = peer.server
    return {"streams": {sid: (s.state, s.send_window, s.head_sent) for sid, s in conn._streams.items()},
            "closed": dict(conn._closed_streams), "send_window": conn._send_window}


def _events(events: list) -> list:
    return [(type(e).__name__, getattr(e, "stream_id", None), getattr(e, "headers", None),
             getattr(e, "end_stream", None)) for e in events]


@pytest.mark.parametrize("body", [b"", b"Hello, World!", b"x" * 20_000])
def test_send_response_writes_what_send_headers_and_send_data_write(body):
    """The inline HEADERS + DATA of ``send_response`` (and its split and empty-body cases) are the
    bytes and states of the general path."""
    fast, checked = ServerPeer(), ServerPeer()
    for peer in (fast, checked):
        peer.send(peer.headers(1))
        peer.server.data_to_send()
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    fast.server.send_response(1, 200, headers, body)
    checked.server.send_headers(1, 200, headers, end_stream=not body)
    if body:
        checked.server.send_data(1, body, end_stream=True)
    assert fast.server.data_to_send() == checked.server.data_to_send()
    assert _state(fast) == _state(checked)


def test_send_response_on_a_stream_still_receiving_matches_the_checked_path():
    """A POST whose body is still open (OPEN, not HALF_CLOSED_REMOTE): the response ends only the
    sending side, in both paths."""
    fast, checked = ServerPeer(), ServerPeer()
    for peer in (fast, checked):
        peer.send(peer.headers(1, [(":method", "POST")] + REQ[1:], end_stream=False))
        peer.server.data_to_send()
    fast.server.send_response(1, 200, [("content-length", "2")], b"ok")
    checked.server.send_headers(1, 200, [("content-length", "2")])
    checked.server.send_data(1, b"ok", end_stream=True)
    assert fast.server.data_to_send() == checked.server.data_to_send()
    assert _state(fast) == _state(checked)


def test_a_bare_header_block_is_read_as_its_padded_and_continued_forms():
    """HEADERS with only END_HEADERS (the fast path) against the same block PADDED with no padding,
    and split into HEADERS + CONTINUATION: the same events and states."""
    bare, padded, continued = ServerPeer(), ServerPeer(), ServerPeer()
    block = bare.block()
    padded.block(), continued.block()  # the encoders' dynamic tables stay alike
    got = [_events(bare.send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))),
           _events(padded.send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM", "PADDED"],
                                            pad_length=0))),
           _events(continued.send(HeadersFrame(1, data=block[:3], flags=["END_STREAM"]),
                                  ContinuationFrame(1, data=block[3:], flags=["END_HEADERS"])))]
    assert got[0] == got[1] == got[2]
    assert got[0][0][0] == "RequestReceived"
    assert _state(bare) == _state(padded) == _state(continued)


def test_the_decoded_block_cache_gives_what_decoding_gives():
    """A repeated block (indexed fields only once the encoder's table is warm) is served from the
    cache from its second use on; the same frames to a connection whose cache is emptied before
    every read (so each block is decoded) give the same events and states."""
    cached, decoded = ServerPeer(), ServerPeer()
    first = cached.headers(1)
    decoded.block()  # keep the two encoders' tables alike (first's block came from cached's)
    block = cached.block()
    decoded.block()
    frames = [first] + [HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]) for sid in (3, 5, 7)]
    got_cached, got_decoded = [], []
    for f in frames:
        got_cached += _events(cached.send(f))
        decoded.server._decoded.clear()
        decoded.server._validated.clear()
        got_decoded += _events(decoded.send(f))
    assert block in cached.server._decoded  # the cache was used
    assert got_cached == got_decoded and len(got_cached) >= 4
    assert _state(cached) == _state(decoded)


def test_send_whole_is_the_two_transitions_it_composes():
    for state in CAN_SEND:
        after_head = TRANSITIONS[(state, StreamInput.SEND_HEADERS)]
        assert SEND_WHOLE[state] is TRANSITIONS[(after_head, StreamInput.SEND_END_STREAM)]
