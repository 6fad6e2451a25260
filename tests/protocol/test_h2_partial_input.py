"""``awaiting_frame_bytes``: what the engines' request-head timeout watches on HTTP/2 connections
(a slowloris trickling a frame, the preface or a header block never finished)."""

from __future__ import annotations

from h2_support import raw
from protocol import H2Connection

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = raw(0x4, 0, 0, b"")
BLOCK = bytes.fromhex("828684") + b"\x41\x01a"  # GET http / :authority a


def test_partial_preface_frame_and_header_block_are_reported():
    conn = H2Connection()
    assert not conn.awaiting_frame_bytes
    conn.receive_data(PREFACE[:10])
    assert conn.awaiting_frame_bytes  # part of the preface
    conn.receive_data(PREFACE[10:] + SETTINGS)
    assert not conn.awaiting_frame_bytes  # whole frames only
    ping = raw(0x6, 0, 0, b"12345678")
    conn.receive_data(ping[:5])
    assert conn.awaiting_frame_bytes  # part of a frame
    conn.receive_data(ping[5:])
    assert not conn.awaiting_frame_bytes
    conn.receive_data(raw(0x1, 0x0, 1, BLOCK[:2]))  # HEADERS without END_HEADERS
    assert conn.awaiting_frame_bytes  # an unfinished header block
    conn.receive_data(raw(0x9, 0x4, 1, BLOCK[2:]))
    assert not conn.awaiting_frame_bytes
