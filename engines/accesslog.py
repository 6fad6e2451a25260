"""Structured access logs: one line per request, plain text or JSON, written whole.

``./start_server --access-log`` writes to stderr, ``--access-log FILE`` appends to FILE;
``--log-format json`` makes each line one JSON object. Fields, in this order:

=============  =============================================================================
time           when the response ended, UTC, ISO 8601 with milliseconds (``...T12:00:00.123Z``)
engine         ``threadpool`` | ``processpool`` | ``selectors`` | ``asyncio``
pid            the serving process (processpool: the worker)
connection_id  the connection's number in that process; stream_id: the HTTP/2 stream
               (HTTP/1.x: the exchange number 1, 3, 5, ...)
request_id     the ``X-Request-Id`` echoed to the client (its own when it sent a safe one)
peer           the client's address
protocol       ``HTTP/1.1``, ``HTTP/1.0`` or ``HTTP/2``; tls: true over TLS
method target  as received (target cut to 2,000 characters); host: Host / ``:authority``
status         the final status sent; bytes: body bytes sent; duration_ms: head received ->
               response written to the connection object, ms
=============  =============================================================================

Plain lines read::

    2024-05-01T12:00:00.123Z 127.0.0.1 selectors pid=7 conn=3 stream=1 id=1f2a9c-3-1 "GET /plaintext HTTP/1.1" 200 13 0.081ms

Each line is one ``os.write`` on a descriptor opened with ``O_APPEND``: lines from the threads of
threadpool and the processes of processpool never interleave mid-line (a write to a pipe of at
most ``PIPE_BUF`` = 4096 bytes is atomic, POSIX; an ``O_APPEND`` write to a file is one
positioned write), which is why lines are kept short and no ``logging`` handler (buffered, and
locked per process only) is used. When ``--access-log`` is off the glue never calls this module.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

__all__ = ["AccessLog", "access_log_for", "format_plain", "format_json", "MAX_TARGET"]

#: Targets longer than this are cut in log lines (keeps a line under PIPE_BUF).
MAX_TARGET = 2000

# (millisecond, its text, second, its text): one tuple, replaced whole (threads without a GIL never
# read a half-updated cache); two threads may both format a new millisecond, which is harmless.
_time_cache: tuple[int, str, int, str] = (-1, "", -1, "")


def _now_iso(now: float) -> str:
    """``now`` (s since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, cached per millisecond."""
    global _time_cache
    ms = int(now * 1000)
    cache = _time_cache
    if cache[0] != ms:
        sec = ms // 1000
        sec_text = cache[3] if cache[2] == sec else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        cache = _time_cache = (ms, f"{sec_text}.{ms % 1000:03d}Z", sec, sec_text)
    return cache[1]


def _quote(text: str) -> str:
    """``text`` safe inside a plain line's quotes: no control characters, ``"`` and ``\\`` escaped."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return json.dumps(text, ensure_ascii=True)[1:-1]


def format_plain(entry: dict[str, Any]) -> str:
    """One plain line (no newline) of an entry with the fields of the module docstring."""
    peer = entry["peer"] or "-"
    return (f'{entry["time"]} {peer} {entry["engine"]} pid={entry["pid"]} conn={entry["connection_id"]} '
            f'stream={entry["stream_id"]} id={entry["request_id"]} '
            f'"{_quote(entry["method"])} {_quote(entry["target"])} {entry["protocol"]}" '
            f'{entry["status"]} {entry["bytes"]} {entry["duration_ms"]:.3f}ms')


def _js(value: Any) -> str:
    """A JSON string (or ``null``): written as it is when plain ASCII, else by ``json.dumps``."""
    if value is None:
        return "null"
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=True)


def format_json(entry: dict[str, Any]) -> str:
    """One JSON object (no newline), ASCII only, keys in the module docstring's order (the same
    text ``json.dumps(entry, separators=(",", ":"))`` gives, about 3x faster)."""
    e = entry
    return (f'{{"time":"{e["time"]}","engine":{_js(e["engine"])},"pid":{e["pid"]},'
            f'"connection_id":{e["connection_id"]},"stream_id":{e["stream_id"]},'
            f'"request_id":{_js(e["request_id"])},"peer":{_js(e["peer"])},"protocol":"{e["protocol"]}",'
            f'"tls":{"true" if e["tls"] else "false"},"method":{_js(e["method"])},'
            f'"target":{_js(e["target"])},"host":{_js(e["host"])},"status":{e["status"]},'
            f'"bytes":{e["bytes"]},"duration_ms":{e["duration_ms"]!r}}}')


class AccessLog:
    """Writes access log lines to one file descriptor.

    Args:
        target: ``"-"`` for stderr, else a path opened ``O_WRONLY | O_APPEND | O_CREAT`` (0644).
        fmt: ``"plain"`` or ``"json"``.

    Raises:
        OSError: the file cannot be opened. ValueError: an unknown format.
    """

    def __init__(self, target: str = "-", fmt: str = "plain") -> None:
        if fmt not in ("plain", "json"):
            raise ValueError(f"unknown access log format {fmt!r}")
        self.format = format_json if fmt == "json" else format_plain
        self.target = target
        if target == "-":
            self.fd = 2
        else:
            self.fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def entry(self, request: Any, status: int, sent: int, duration: float) -> dict[str, Any]:
        """The fields of one line for ``request`` (an ``app.Request``) answered with ``status``
        and ``sent`` body bytes after ``duration`` seconds."""
        info = request.info
        target = request.target
        if len(target) > MAX_TARGET:
            target = target[:MAX_TARGET] + "..."
        version = request.http_version
        return {"time": _now_iso(time.time()), "engine": info.engine, "pid": info.pid or os.getpid(),
                "connection_id": info.connection_id, "stream_id": request.stream_id,
                "request_id": request.request_id, "peer": info.peer[0] if info.peer else None,
                "protocol": f"HTTP/{version}", "tls": info.tls,
                "method": request.method, "target": target, "host": request.authority[:256],
                "status": status, "bytes": sent, "duration_ms": int(duration * 1_000_000) / 1000}

    def write(self, request: Any, status: int, sent: int, duration: float) -> None:
        """Write one line (one ``os.write``); errors writing are ignored (a full disk must not
        fail requests)."""
        entry = self.entry(request, status, sent, duration)
        line = (self.format(entry) + "\n").encode("ascii", "replace")
        if len(line) > 4000:  # escapes made it long: stay under PIPE_BUF so the write is atomic
            entry["target"] = entry["target"][:200] + "..."
            entry["host"] = entry["host"][:100]
            line = (self.format(entry) + "\n").encode("ascii", "replace")
        try:
            os.write(self.fd, line)
        except OSError:
            pass


_logs: dict[tuple[int, str, str], AccessLog] = {}
# Thread workers (and threadpool's threads, with or without a GIL) may ask at once: one opens it.
# Lines need no lock: each is one os.write of < PIPE_BUF bytes on an O_APPEND descriptor.
_logs_lock = threading.Lock()


def access_log_for(target: str, fmt: str) -> AccessLog:
    """The process's :class:`AccessLog` for ``(target, fmt)``, opened on first use (so each
    processpool worker opens its own ``O_APPEND`` descriptor after the fork)."""
    key = (os.getpid(), target, fmt)
    log = _logs.get(key)
    if log is None:
        with _logs_lock:
            log = _logs.get(key)
            if log is None:
                log = _logs[key] = AccessLog(target, fmt)
    return log
