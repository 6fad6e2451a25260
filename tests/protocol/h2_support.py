"""Test helpers for the HTTP/2 roles: a raw-frame peer built on hyperframe + hpack.

Frames sent to the connection under test are built with ``hyperframe`` (or as raw bytes when
they must be malformed); frames it sends back are parsed with ``hyperframe``, so the protocol
package's own frame code is checked by an independent implementation.
"""

from __future__ import annotations

import hpack
from hpack.table import HeaderTable
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from protocol import events as ev
from protocol.h2_connection import H2Config, H2Connection

__all__ = ["PREFACE", "REQ", "raw", "parse_frames", "ServerPeer", "ContinuationFrame", "DataFrame",
           "GoAwayFrame", "HeadersFrame", "PingFrame", "PriorityFrame", "RstStreamFrame",
           "SettingsFrame", "WindowUpdateFrame", "encode_header_block"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQ = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "example.com")]


def raw(type_: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame from its parts, for frames hyperframe refuses to build (wrong lengths...)."""
    return len(payload).to_bytes(3, "big") + bytes((type_, flags)) + stream_id.to_bytes(4, "big") + payload


def parse_frames(data: bytes) -> list[Frame]:
    """Split ``data`` into hyperframe frames; asserts nothing is left over."""
    frames = []
    mv = memoryview(data)
    while mv:
        f, length = Frame.parse_frame_header(mv[:9])
        f.parse_body(mv[9:9 + length])
        frames.append(f)
        mv = mv[9 + length:]
    return frames


class ServerPeer:
    """A scripted client talking raw frames to an in-memory ``H2Connection``."""

    def __init__(self, config: H2Config | None = None, handshake: bool = True,
                 settings: dict[int, int] | None = None) -> None:
        self.server = H2Connection(config)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.events: list[ev.Event] = []
        self.server_settings: dict[int, int] = {}
        first = parse_frames(self.server.data_to_send())
        assert isinstance(first[0], SettingsFrame) and "ACK" not in first[0].flags
        self.server_settings = dict(first[0].settings)
        if handshake:
            sf = SettingsFrame(0, settings=settings or {})
            self.send(PREFACE + sf.serialize())
            frames = self.read()
            assert any(isinstance(f, SettingsFrame) and "ACK" in f.flags for f in frames)
            self.events.clear()

    def send(self, *items: bytes | Frame) -> list[ev.Event]:
        """Feed frames/bytes to the server in one read; return (and record) the events."""
        data = b"".join(i if isinstance(i, (bytes, bytearray)) else i.serialize() for i in items)
        out = self.server.receive_data(data)
        self.events.extend(out)
        return out

    def read(self) -> list[Frame]:
        """Frames the server wants to write, parsed with hyperframe."""
        frames = parse_frames(self.server.data_to_send())
        head, parts = None, []
        for f in frames:  # decode each header block once its END_HEADERS frame is in
            if isinstance(f, HeadersFrame):
                head, parts = f, [f.data]
            elif isinstance(f, ContinuationFrame):
                parts.append(f.data)
            if isinstance(f, (HeadersFrame, ContinuationFrame)) and "END_HEADERS" in f.flags:
                head.decoded = self.dec.decode(b"".join(parts))  # type: ignore[union-attr]
        return frames

    def block(self, headers=REQ) -> bytes:
        return self.enc.encode(headers)

    def headers(self, sid: int, headers=REQ, end_stream: bool = True, end_headers: bool = True,
                **kw) -> HeadersFrame:
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        return HeadersFrame(sid, data=self.block(headers), flags=flags, **kw)

    def post(self, sid: int, body: bytes = b"", extra=(), end_stream: bool = True):
        """HEADERS of a POST (+ DATA with END_STREAM when ``body``)."""
        hdrs = [(":method", "POST")] + REQ[1:] + list(extra)
        frames = [self.headers(sid, hdrs, end_stream=False)]
        if body or end_stream:
            frames.append(DataFrame(sid, data=body, flags=["END_STREAM"] if end_stream else []))
        return frames

    def respond(self, sid: int, body: bytes = b"", status: int = 200) -> None:
        """Answer stream ``sid`` as the application would."""
        self.server.send_headers(sid, status, [("content-length", str(len(body)))], end_stream=not body)
        if body:
            self.server.send_data(sid, body, end_stream=True)

    # -- expectations (what h2spec's Verify* accept) --

    def expect_connection_error(self, *codes: int) -> GoAwayFrame:
        frames = self.read()
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert goaways, f"expected GOAWAY{codes}, got {frames}"
        assert goaways[-1].error_code in codes, f"GOAWAY {goaways[-1].error_code} not in {codes}"
        assert self.server.closed
        term = [e for e in self.events if isinstance(e, ev.ConnectionTerminated)]
        assert term and term[-1].error_code in codes and not term[-1].remote
        return goaways[-1]

    def expect_stream_error(self, sid: int, *codes: int) -> RstStreamFrame:
        frames = self.read()
        rsts = [f for f in frames if isinstance(f, RstStreamFrame) and f.stream_id == sid]
        assert rsts, f"expected RST_STREAM{codes} on {sid}, got {frames}"
        assert rsts[-1].error_code in codes, f"RST_STREAM {rsts[-1].error_code} not in {codes}"
        assert not self.server.closed
        assert any(isinstance(e, ev.StreamReset) and e.stream_id == sid and not e.remote for e in self.events)
        return rsts[-1]

    def expect_ping_ack(self, data: bytes = b"h2spec\x00\x00") -> None:
        """The connection still works: a PING is answered (h2spec's liveness check)."""
        self.send(PingFrame(0, opaque_data=data))
        frames = self.read()
        assert any(isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == data for f in frames), frames
        assert not self.server.closed


# -- a stateless HPACK encoder (RFC 7541), for tests that need a header block without an
# -- encoder's dynamic table; it lived in protocol/h2_client.py, which never used it.

STATIC_PAIR: dict[tuple[bytes, bytes], int] = {}
STATIC_NAME: dict[bytes, int] = {}
for _i, (_n, _v) in enumerate(HeaderTable.STATIC_TABLE, 1):
    STATIC_PAIR.setdefault((_n, _v), _i)
    STATIC_NAME.setdefault(_n, _i)


def _int(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 §5.1 integer with an N-bit prefix; ``first`` holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(s: bytes) -> bytes:
    """RFC 7541 §5.2 string literal, not Huffman-coded."""
    return _int(len(s), 7, 0) + s


def encode_header_block(fields: list[tuple[bytes, bytes]]) -> bytes:
    """HPACK-encode ``fields`` statelessly: static-table indexes where the pair or the name is
    there, literals without indexing otherwise (RFC 7541 §6.1, §6.2.2)."""
    parts = []
    for name, value in fields:
        idx = STATIC_PAIR.get((name, value))
        if idx is not None:
            parts.append(_int(idx, 7, 0x80))
            continue
        idx = STATIC_NAME.get(name)
        if idx is not None:
            parts.append(_int(idx, 4, 0x00) + _string(value))
        else:
            parts.append(b"\x00" + _string(name) + _string(value))
    return b"".join(parts)
