"""The shared lifecycle (engines/lifecycle.py) run in-process: one connection's bug closes only
that connection, and the signal handlers only queue a command.

The loop runs in a thread here (``loop()``, not ``serve()``: signal handlers belong to the main
thread) and is stopped with the same ``("stop", signum)`` command a SIGTERM puts on its queue.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading

import pytest

from app import create_app
from engines.config import ServerConfig
from engines.lifecycle import SignalCommands
from engines.listeners import open_listeners
from engines.selectorsloop import SelectorsEngine
from engines.threadpool import ThreadPoolEngine
from rawhttp import RawClient

WWW = os.path.join(os.path.dirname(__file__), "..", "..", "www")
GET = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"


def _faulty(base: type) -> type:
    """``base`` whose ``feed`` raises for the first connection only (a bug in the engine)."""

    class Faulty(base):
        def feed(self, conn, data):
            if conn.id == 1 and data:
                raise RuntimeError("injected engine bug")
            return super().feed(conn, data)

    return Faulty


@pytest.mark.parametrize("base", [SelectorsEngine, ThreadPoolEngine], ids=["selectors", "threadpool"])
def test_an_exception_closes_only_its_connection(base, tmp_path, caplog):
    config = ServerConfig(port=0, data_dir=str(tmp_path), drain_timeout=1)
    listeners = open_listeners(config)
    port = listeners[0].address[1]
    engine = _faulty(base)(create_app(WWW, str(tmp_path)), config, listeners)
    runner = threading.Thread(target=engine.loop, daemon=True)
    with caplog.at_level(logging.ERROR):
        runner.start()
        try:
            with RawClient(port, timeout=5) as bad, RawClient(port, timeout=5) as good:
                good.send(GET)  # connection 2 ... after connection 1 was accepted
                assert good.read_response().status == 200
                bad.send(GET)
                assert bad.closed_by_peer()  # closed, not answered: its handling failed
                good.send(GET)
                assert good.read_response().status == 200  # the server goes on
        finally:
            engine.post("stop", signal.SIGTERM)
            runner.join(10)
    assert not runner.is_alive()
    failures = [r for r in caplog.records if "injected engine bug" in str(r.exc_info)]
    assert len(failures) == 1, caplog.records


def test_signal_handler_only_queues_a_command():
    """The handler does no socket I/O: it puts ("stop", signum) on the queue; the wake-up fd
    (written by Python itself) is what makes the loop's select() return."""
    commands: queue.SimpleQueue = queue.SimpleQueue()
    r, w = socket.socketpair()
    with r, w:
        w.setblocking(False)
        with SignalCommands(commands, w):
            signal.raise_signal(signal.SIGINT)
        assert commands.get_nowait() == ("stop", signal.SIGINT)
        assert commands.empty()
        assert r.recv(16) == bytes([signal.SIGINT])  # Python's wake-up byte, not ours

