"""The session (engines/session.py, engines/exchange.py, engines/tasks.py) driven without sockets: bytes in, tasks stepped, bytes out.

The engine's whole conversation with a session is ``receive`` / ``step`` / ``data_to_send`` /
``runnable`` / ``park`` / ``shutdown``; these tests play a minimal engine that honours every effect
at once (a Sleep is not waited: only the order of events matters here), as hypercorn's
tests/protocol drive its protocol objects in memory.
"""

from __future__ import annotations

import os

import hpack
import pytest
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, SettingsFrame

from app import create_app
from engines.config import ServerConfig
from engines.listeners import connection_info
from engines.session import H2_PREFACE, Session
from app.effects import FLUSH, PARK, Sleep
from engines.tasks import SendFile

WWW = os.path.join(os.path.dirname(__file__), "..", "..", "www")
GET = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture
def session(tmp_path):
    app = create_app(WWW, str(tmp_path))
    info = connection_info(1, "test", ("127.0.0.1", 40000), ("127.0.0.1", 8080))
    return Session(app, ServerConfig(), info)


def drive(session: Session, data: bytes) -> bytes:
    """Feed ``data``, step every task to its end (effects honoured at once), return the output."""
    pending = session.receive(data)
    effects = []
    while pending:
        task = pending.pop(0)
        while (effect := task.step()) is not None:
            effects.append(type(effect))
            if effect is PARK and not session.park(task):
                break
            assert effect is FLUSH or effect is PARK or isinstance(effect, (Sleep, SendFile))
        pending.extend(session.runnable())
    return session.data_to_send()


def test_http1_request_in_response_out(session):
    out = drive(session, GET % b"/plaintext")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nHello, World!")
    assert session.in_order and not session.busy and not session.closed


def test_http1_pipelined_requests_answered_in_order(session):
    out = drive(session, GET % b"/plaintext" + GET % b"/json")
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.index(b"Hello, World!") < out.index(b'{"message":"Hello, World!"}')


def test_http1_wait_is_a_sleep_effect_and_bad_input_a_400(session):
    out = drive(session, GET % b"/io?ms=5")
    assert b"200 OK" in out and out.endswith(b"waited 5 ms\n")
    out = drive(session, b"GET /plaintext HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and session.closed


def test_shutdown_answers_in_flight_with_connection_close(session):
    tasks = session.receive(GET % b"/io?ms=5")
    assert session.busy
    session.shutdown()
    for task in tasks:
        while task.step() is not None:
            pass
    out = session.data_to_send()
    assert b"200 OK" in out and b"connection: close" in out.lower() and session.closed


def test_http2_preface_settings_request_response(session):
    enc, dec = hpack.Encoder(), hpack.Decoder()
    block = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/plaintext"), (":authority", "t")])
    data = (H2_PREFACE + SettingsFrame(0).serialize()
            + HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    out = drive(session, data)
    assert not session.in_order and session.http_version == "2"
    frames = []
    while out:
        frame, length = Frame.parse_frame_header(out[:9])
        frame.parse_body(memoryview(out[9:9 + length]))
        frames.append(frame)
        out = out[9 + length:]
    assert isinstance(frames[0], SettingsFrame) and "ACK" not in frames[0].flags
    headers = next(f for f in frames if isinstance(f, HeadersFrame) and f.stream_id == 1)
    assert dict(dec.decode(headers.data))[":status"] == "200"
    body = b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == 1)
    assert body == b"Hello, World!"
    assert not any(isinstance(f, GoAwayFrame) for f in frames)


def test_a_finished_request_leaves_no_cyclic_garbage(session):
    """Every object of an answered request (exchange, request, task, coroutine) is freed by
    reference counting as the engine lets go of it, over both protocols: nothing for the cyclic
    GC to find, which a cycle (the request's body reader bound to its exchange) used to leave."""
    import gc

    from loadtest.micro import sessionbench

    drive(session, GET % b"/plaintext")
    h2 = Session(session.app, ServerConfig(), session.info)
    reads = sessionbench.h2_reads(4)
    drive(h2, reads[0])
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            assert drive(session, GET % b"/plaintext").endswith(b"Hello, World!")
        for data in reads[1:]:
            assert drive(h2, data).count(b"Hello, World!") == sessionbench.STREAMS
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_an_exchange_sets_every_field_of_a_task(session):
    """An Exchange stores Task's fields in its own __init__ (one call fewer a request): a field
    added to Task and not there would be missing here."""
    from engines.exchange import Exchange
    from engines.tasks import Task
    st = Exchange(session, 1, False)
    for name in Task.__slots__:
        getattr(st, name)  # AttributeError when unset
    assert (st.session, st.stream_id, st.coro, st.cancelled, st.parked, st.woken, st.waiting, st.wakeup) == (
        session, 1, None, False, False, False, False, None)


def test_the_request_id_scan_of_a_repeated_field_tuple_is_remembered(session):
    """The client's X-Request-Id is looked for once per field tuple (a cached head repeats the
    same tuple object); another tuple, with or without the field, is scanned again."""
    from protocol import events as ev
    with_id = (("host", "a"), ("x-request-id", "abc-1"))
    without = (("host", "a"),)
    from engines.glue import H2
    session.glue = H2
    ids = []
    for sid, headers in enumerate((with_id, with_id, without, without, with_id), start=1):
        session._on_request(ev.request_received(sid, "GET", "/", "a", "http", "2", headers, False, True), b"", True)
        st = session._streams[sid]
        ids.append(st.request.request_id)
        st.coro.close()  # never run: only the request it was given is looked at
    assert ids[0] == ids[1] == ids[4] == "abc-1"
    assert ids[2].endswith("-3") and ids[3].endswith("-4")
