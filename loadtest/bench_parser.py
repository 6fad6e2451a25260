"""Micro-benchmark of the HTTP/1.1 server connection: parse a typical GET, answer it, keep-alive.

Usage: ``PYTHONPATH=. python loadtest/bench_parser.py [--requests N] [--pipeline K]``.
Prints requests/s for the whole parse + respond cycle on one core (pure Python, no sockets), the
median of several runs. Compare figures only on the same machine and Python version.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

from protocol.http1 import H1Connection

__all__ = ["REQUEST", "run"]

REQUEST = (b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench/1.0\r\n"
           b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n")
HEADERS = (("content-type", "text/plain; charset=utf-8"), ("content-length", "13"),
           ("date", "Mon, 01 Jan 2024 00:00:00 GMT"))
BODY = b"Hello, World!"


def run(requests: int, pipeline: int = 1) -> float:
    """Serve ``requests`` requests on one connection, ``pipeline`` per feed; return requests/s."""
    conn = H1Connection()
    feed = REQUEST * pipeline
    rounds = requests // pipeline
    t0 = time.perf_counter()
    for _ in range(rounds):
        events = conn.receive_data(feed)
        while events:
            sid = events[0].stream_id
            conn.send_headers(sid, 200, HEADERS)
            conn.send_data(sid, BODY)
            conn.send_end(sid)
            events = conn.next_events()
        conn.data_to_send()
    elapsed = time.perf_counter() - t0
    return rounds * pipeline / elapsed


def run_httptools(requests: int) -> float | None:
    """Reference: httptools (C, llhttp) parsing the same request with minimal Python callbacks and
    a prebuilt-style response, roughly uvicorn's floor. None when httptools is not installed."""
    try:
        import httptools
    except ImportError:
        return None

    class Proto:
        def __init__(self) -> None:
            self.headers: list = []
            self.done = 0

        def on_message_begin(self) -> None:
            self.headers = []

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name.lower(), value))

        def on_message_complete(self) -> None:
            self.done += 1

    proto = Proto()
    parser = httptools.HttpRequestParser(proto)
    t0 = time.perf_counter()
    for _ in range(requests):
        parser.feed_data(REQUEST)
        head = [b"HTTP/1.1 200 OK\r\n"]
        for name, value in HEADERS:
            head.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
        head.append(b"server: x\r\n\r\n")
        b"".join(head) + BODY
    return requests / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"request: {len(REQUEST)} bytes; python {platform.python_version()} on {platform.machine()}",
          file=sys.stderr)
    rates = [run(args.requests, args.pipeline) for _ in range(args.repeat)]
    print(f"H1Connection: {statistics.median(rates):,.0f} requests/s (median of {args.repeat}, "
          f"pipeline={args.pipeline})")
    ref = [run_httptools(args.requests) for _ in range(args.repeat)]
    if ref[0] is not None:
        print(f"httptools reference (parse + build response): {statistics.median(ref):,.0f} requests/s")


if __name__ == "__main__":
    main()
