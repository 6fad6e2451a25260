#!/usr/bin/env python3
"""A differential of the HTTP/2 request rules: seeded mutations of a valid h2c request, sent to
nghttpd (nghttp2), to hypercorn (the ``h2`` library) and to each of the lab's engines; a case the lab
serves while both references refuse it is a finding (docs/http2.md, "RFC 9113 rule by rule").

Each case is one connection: the client preface, SETTINGS, then a GET of /plaintext on stream 1
with one to three mutations drawn by ``random.Random(seed + case)`` from :data:`MUTATIONS` (field
mutations of §8.2-8.3: pseudo-headers dropped, doubled, misplaced or emptied, Host against
:authority, case, connection-specific fields, TE, content-length, CR/LF/NUL and edge whitespace;
frame mutations of §5.1, §5.3 and §8.1: PRIORITY on itself, frames on idle streams, trailers,
a second HEADERS, a body that contradicts content-length). A server *served* the case when it
sent a HEADERS with ``:status`` on stream 1; anything else (RST_STREAM, GOAWAY, close, silence
for the timeout) is *refused*.

Run (outside CI; needs ``nghttpd`` from Debian's nghttp2-server and hypercorn from
requirements-peers.txt)::

    python tests/fuzz/differential_h2.py --cases 2000 --seed 1
    python tests/fuzz/differential_h2.py --cases 200 --engines selectors --json /tmp/diff.json

Exit status 1 when the lab serves a case both references refuse, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import hpack
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame, PriorityFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from engines import ENGINES  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: a bare ASGI app for hypercorn: 200 for any request, the body read first
ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
'''


# -- cases --------------------------------------------------------------------------------------

class Case:
    """One request being mutated: its fields, the frames around it, whether HEADERS ends the stream."""

    def __init__(self, authority: str) -> None:
        self.fields = [(":method", "GET"), (":scheme", "http"), (":path", "/plaintext"), (":authority", authority)]
        self.before: list[str] = []   # frame kinds sent before the HEADERS
        self.after: list[str] = []    # frame kinds sent after it
        self.end_stream = True
        self.priority_self = False
        self.names: list[str] = []


def _drop(name):
    def f(c, rng):
        c.fields = [(k, v) for k, v in c.fields if k != name]
    return f


def _dup(name):
    def f(c, rng):
        c.fields.append((name, dict(c.fields).get(name, "x")))
    return f


def _set(name, value):
    def f(c, rng):
        c.fields = [(k, value if k == name else v) for k, v in c.fields]
    return f


def _add(name, value):
    def f(c, rng):
        c.fields.append((name, value))
    return f


def _pseudo_after_regular(c, rng):
    c.fields = [("x-first", "1")] + c.fields


def _host_same(c, rng):
    c.fields.append(("host", dict(c.fields).get(":authority", "localhost")))


def _body_mismatch(c, rng):
    c.end_stream = False
    c.fields.append(("content-length", "5"))
    c.after.append("data3-end")


def _body_ok(c, rng):
    c.end_stream = False
    c.fields[0] = (":method", "POST")
    c.after.append("data3-end")


def _trailers_no_end(c, rng):
    c.end_stream = False
    c.after.append("trailers-no-end")


def _second_headers(c, rng):
    c.end_stream = False
    c.after.append("headers-again")


def _frame_before(kind):
    def f(c, rng):
        c.before.append(kind)
    return f


def _headers_priority_self(c, rng):
    c.priority_self = True


MUTATIONS = {
    "drop :authority": _drop(":authority"), "drop :method": _drop(":method"), "drop :scheme": _drop(":scheme"),
    "drop :path": _drop(":path"), "dup :path": _dup(":path"), "dup :authority": _dup(":authority"),
    "host same": _host_same, "host other": _add("host", "other.example"), "host empty": _add("host", ""),
    "two hosts": lambda c, rng: (_host_same(c, rng), _host_same(c, rng)),
    "uppercase name": _add("X-Upper", "1"), "colon in name": _add("x:y", "1"), "space in name": _add("x y", "1"),
    "connection": _add("connection", "keep-alive"), "keep-alive": _add("keep-alive", "5"),
    "transfer-encoding": _add("transfer-encoding", "chunked"), "upgrade": _add("upgrade", "h2c"),
    "te gzip": _add("te", "gzip"), "te trailers": _add("te", "trailers"),
    "content-length 0": _add("content-length", "0"), "content-length 5 no body": _add("content-length", "5"),
    "content-length junk": _add("content-length", "5x"), "body mismatch": _body_mismatch, "body ok": _body_ok,
    "pseudo after regular": _pseudo_after_regular, "unknown pseudo": _add(":foo", "bar"),
    "response pseudo": _add(":status", "200"), "empty :path": _set(":path", ""),
    "relative :path": _set(":path", "plaintext"), "asterisk GET": _set(":path", "*"),
    "userinfo": _set(":authority", "user@localhost"), "empty :authority": _set(":authority", ""),
    "CR in value": _add("x-v", "a\rb"), "LF in value": _add("x-v", "a\nb"), "NUL in value": _add("x-v", "a\x00b"),
    "leading space": _add("x-v", " a"), "trailing tab": _add("x-v", "a\t"), "empty :method": _set(":method", ""),
    "CONNECT": _set(":method", "CONNECT"), "lowercase method": _set(":method", "get"),
    "scheme ftp": _set(":scheme", "ftp"), "cookie split": lambda c, rng: c.fields.extend([("cookie", "a=1"), ("cookie", "b=2")]),
    "trailers no END_STREAM": _trailers_no_end, "second HEADERS": _second_headers,
    "PRIORITY on itself before": _frame_before("priority-self"), "PRIORITY on 3 before": _frame_before("priority-3"),
    "HEADERS priority on itself": _headers_priority_self, "RST_STREAM on idle 1": _frame_before("rst-1"),
    "WINDOW_UPDATE on idle 1": _frame_before("window-1"), "DATA on idle 1": _frame_before("data-1"),
}


def build(case: Case, enc: hpack.Encoder) -> bytes:
    """The bytes of one case, after the preface and SETTINGS."""
    raw = {  # frame kinds -> frames on stream 1 (or 3)
        "priority-self": lambda: PriorityFrame(1, depends_on=1, stream_weight=16),
        "priority-3": lambda: PriorityFrame(3, depends_on=0, stream_weight=16),
        "rst-1": lambda: RstStreamFrame(1, error_code=8),
        "window-1": lambda: WindowUpdateFrame(1, window_increment=1),
        "data-1": lambda: DataFrame(1, data=b"x"),
        "data3-end": lambda: DataFrame(1, data=b"abc", flags=["END_STREAM"]),
        "trailers-no-end": lambda: HeadersFrame(1, data=enc.encode([("x-trailer", "1")]), flags=["END_HEADERS"]),
        "headers-again": lambda: HeadersFrame(1, data=enc.encode(case.fields), flags=["END_HEADERS", "END_STREAM"]),
    }
    out = [raw[k]().serialize() for k in case.before]
    flags = ["END_HEADERS"] + (["END_STREAM"] if case.end_stream else [])
    kw = {}
    if case.priority_self:
        flags.append("PRIORITY")
        kw = {"depends_on": 1, "stream_weight": 16}
    fields = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in case.fields]
    out.append(HeadersFrame(1, data=enc.encode(fields), flags=flags, **kw).serialize())
    out += [raw[k]().serialize() for k in case.after]
    return b"".join(out)


def make_case(seed: int, i: int, authority: str) -> Case:
    rng = random.Random(seed * 1_000_003 + i)
    case = Case(authority)
    for name in rng.sample(sorted(MUTATIONS), rng.choice((1, 1, 2, 3))):
        MUTATIONS[name](case, rng)
        case.names.append(name)
    return case


# -- running a case against a server ------------------------------------------------------------

def outcome(port: int, payload_of, timeout: float = 1.5) -> str:
    """``"served"`` (HEADERS with :status on stream 1) or why not: ``rst``, ``goaway``, ``closed``,
    ``silent``."""
    enc, dec = hpack.Encoder(), hpack.Decoder()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(PREFACE + SettingsFrame(0).serialize() + payload_of(enc))
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length = int.from_bytes(buf[:3], "big")
                f, _ = Frame.parse_frame_header(memoryview(buf[:9]))
                f.parse_body(memoryview(buf[9:9 + length]))
                buf = buf[9 + length:]
                if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                    s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
                if isinstance(f, HeadersFrame):
                    try:
                        fields = dict(dec.decode(f.data))
                    except Exception:  # noqa: BLE001 - a block we cannot read is not a response
                        fields = {}
                    if f.stream_id == 1 and (":status" in fields or b":status" in fields):
                        return "served"
                if isinstance(f, RstStreamFrame) and f.stream_id == 1:
                    return "rst"
                if isinstance(f, GoAwayFrame):
                    return "goaway"
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except OSError:
                return "closed"
            if not chunk:
                return "closed"
            buf += chunk
    return "silent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def start_servers(engines: list[str], tmp: str) -> dict[str, tuple[int, subprocess.Popen]]:
    """nghttpd, hypercorn and the engines on free ports of 127.0.0.1; each waited for."""
    servers: dict[str, tuple[int, subprocess.Popen]] = {}
    docroot = os.path.join(tmp, "www")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "plaintext"), "w") as f:
        f.write("Hello, World!")
    with open(os.path.join(tmp, "diffapp.py"), "w") as f:
        f.write(ASGI_APP)
    commands = {
        "nghttpd": lambda port: [shutil.which("nghttpd") or "nghttpd", "--no-tls", "-d", docroot, str(port)],
        "hypercorn": lambda port: [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}",
                                   "--log-level", "warning", "diffapp:app"],
    }
    for engine in engines:
        commands[engine] = lambda port, engine=engine: [sys.executable, os.path.join(ROOT, "start_server"), "--engine",
                                                        engine, "--port", str(port), "--log-level", "ERROR"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, ROOT, os.environ.get("PYTHONPATH", "")]))
    for name, argv in commands.items():
        port = free_port()
        proc = subprocess.Popen(argv(port), cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        servers[name] = (port, proc)
        wait_port(port, proc)
    return servers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--json", default=None, help="write every case and outcome here")
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if shutil.which("nghttpd") is None:
        p.error("nghttpd is not installed (Debian: apt-get install nghttp2-server)")
    findings, stricter, records = [], [], []
    with tempfile.TemporaryDirectory(prefix="h2diff-") as tmp:
        servers = start_servers(engines, tmp)
        try:
            for i in range(args.cases):
                results = {}
                for name, (port, _) in servers.items():
                    case = make_case(args.seed, i, f"127.0.0.1:{port}")
                    try:
                        results[name] = outcome(port, lambda enc, case=case: build(case, enc))
                    except OSError as exc:
                        results[name] = f"error {exc}"
                names = make_case(args.seed, i, "x").names
                refs_refuse = results["nghttpd"] != "served" and results["hypercorn"] != "served"
                refs_serve = results["nghttpd"] == "served" and results["hypercorn"] == "served"
                served = [e for e in engines if results[e] == "served"]
                if refs_refuse and served:
                    findings.append((i, names, results))
                if refs_serve and len(served) < len(engines):
                    stricter.append((i, names, results))
                records.append({"case": i, "mutations": names, **results})
        finally:
            for _, proc in servers.values():
                proc.terminate()
            for _, proc in servers.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "cases": args.cases, "engines": engines, "records": records}, f, indent=1)
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                         check=False).stdout.strip()
    version = subprocess.run(["nghttpd", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"# python tests/fuzz/differential_h2.py --cases {args.cases} --seed {args.seed}; git {rev}; "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {version}; hypercorn (h2) from requirements-peers.txt")
    print(f"{args.cases} cases, seed {args.seed}; engines {', '.join(engines)}")
    for name in ("nghttpd", "hypercorn", *engines):
        counts: dict[str, int] = {}
        for r in records:
            counts[r[name]] = counts.get(r[name], 0) + 1
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"served by the lab, refused by nghttpd and hypercorn: {len(findings)}")
    for i, names, results in findings[:20]:
        print(f"  case {i}: {' + '.join(names)}: {results}")
    print(f"served by both references, refused by an engine (stricter than both): {len(stricter)}")
    for i, names, results in stricter[:20]:
        print(f"  case {i}: {' + '.join(names)}: {results}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
