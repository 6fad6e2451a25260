"""The sequential probes of the experiments (loadtest/experiments/base.py ``_probe_path``,
interference's ``_probe_new_connections``) against a listener that resets every other connection:
with an ``errors`` list a request without an answer is counted there and the probe goes on (the
row keeps the failure); without one it raises, as before. No load, no timing asserted."""

from __future__ import annotations

import http.client
import socket
import struct
import threading

import pytest

from loadtest.experiments import _probe_new_connections
from loadtest.experiments.base import _probe_path, probe_errors

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture
def resetting_port():
    """A listener on 127.0.0.1 that reads each connection's request, then resets the 1st, 3rd, ...
    connection (SO_LINGER 0: an RST, the client sees ECONNRESET) and answers the 2nd, 4th, ...
    with 200 and ``Connection: close``. Yields the port; the listener is closed after the test."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        n = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                n += 1
                if n % 2:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    conn.sendall(ANSWER)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(10)


@pytest.mark.parametrize("probe", [_probe_path, _probe_new_connections])
def test_a_request_without_an_answer_is_counted_and_the_probe_goes_on(probe, resetting_port):
    errors: list[str] = []
    latencies = probe(resetting_port, "/plaintext", 4, errors)
    assert len(latencies) == 2 and all(ms > 0 for ms in latencies)
    assert len(errors) == 2, errors
    assert all(e.startswith(("ConnectionResetError", "RemoteDisconnected")) for e in errors), errors


@pytest.mark.parametrize("probe", [_probe_path, _probe_new_connections])
def test_without_an_errors_list_the_first_failure_raises(probe, resetting_port):
    with pytest.raises((OSError, http.client.HTTPException)):
        probe(resetting_port, "/plaintext", 4)


def test_probe_errors_counts_each_distinct_error_most_frequent_first():
    assert probe_errors([]) == ""
    assert probe_errors(["B: y", "A: x", "B: y"]) == "2x B: y; 1x A: x"
