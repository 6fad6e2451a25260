"""HTTP/2 over real sockets on every engine: the ways in (prior knowledge, h2c Upgrade, TLS with
ALPN), every route, stream concurrency, graceful stop, connection errors, h2spec's cases, and
independent clients (the ``h2`` library, httpx, curl, nghttp, h2load).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from conftest import ENGINES, start_server
from h2spec_cases import CASES
from h2wire import (CLOSED, TIMEOUT, DataFrame, GoAwayFrame, H2Wire, HeadersFrame, PingFrame, PriorityFrame,
                    RstStreamFrame, WindowUpdateFrame, raw)
from rawhttp import RawClient, exchange, wait_in_flight

WWW = os.path.join(os.path.dirname(__file__), "..", "..", "www")
MAX_STREAM_ID = 2**31 - 1


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install curl nghttp2-client; .ci/run does it)")
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One server per engine for the whole module, plain port and TLS port (``--tls-port 0``),
    started on first use and stopped at the end."""
    started: dict[tuple[str, str], object] = {}

    def get(engine: str, http: str = "auto"):
        """The server of ``engine`` with ``--http http`` (HTTP/2 only: ``"2"``)."""
        if (engine, http) not in started:
            started[engine, http] = start_server(engine, "--tls", "--tls-port", "0", "--http", http,
                                                 tmp_path=tmp_path_factory.mktemp(engine))
        return started[engine, http]

    yield get
    for srv in started.values():
        srv.stop()


@pytest.fixture
def srv(engine, servers):
    """The module's server of ``engine`` (plain ``port`` and ``tls_port``)."""
    return servers(engine)


class H2Client:
    """The ``h2`` library's client role over one plain or TLS socket (an independent peer)."""

    def __init__(self, port: int, tls: bool = False, timeout: float = 10.0) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.scheme = "https" if tls else "http"
        self.port = port
        self.responses: dict[int, dict] = {}

    def start(self) -> None:
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def request(self, path: str, method: str = "GET", body: bytes = b"", headers: list | None = None) -> int:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme), (":path", path),
                (":authority", f"127.0.0.1:{self.port}")] + list(headers or [])
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        self.responses[sid] = {"headers": None, "body": b"", "done": False, "at": None}
        self.flush()
        return sid

    def pump(self, until_done: list[int]) -> None:
        """Read until every stream in ``until_done`` has ended; AssertionError on a reset/EOF."""
        while not all(self.responses[s]["done"] for s in until_done):
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for e in self.conn.receive_data(data):
                r = self.responses.get(getattr(e, "stream_id", None) or 0)
                if isinstance(e, h2.events.ResponseReceived):
                    r["headers"] = dict(e.headers)
                elif isinstance(e, h2.events.DataReceived):
                    r["body"] += e.data
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    r["done"] = True
                    r["at"] = time.monotonic()
                elif isinstance(e, h2.events.StreamReset):
                    raise AssertionError(f"stream {e.stream_id} reset {e.error_code}")
            self.flush()


# -- ways in ----------------------------------------------------------------------------------

def test_prior_knowledge_h2_library(srv):
    c = H2Client(srv.port)
    try:
        c.start()
        sid = c.request("/plaintext")
        c.pump([sid])
        assert c.responses[sid]["headers"][":status"] == "200"
        assert c.responses[sid]["body"] == b"Hello, World!"
    finally:
        c.close()


@pytest.mark.parametrize("alpn, expect", [(("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1")])
def test_tls_alpn_h2_and_http11_fallback(srv, alpn, expect):
    if expect == "h2":
        with H2Wire(srv.tls_port, tls=True, alpn=alpn) as w:
            assert w.alpn == "h2"
            w.handshake()
            w.request(1, path="/json")
            heads, body, _ = w.response(1)
            assert dict(heads)[":status"] == "200" and json.loads(body) == {"message": "Hello, World!"}
        return
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, World!")


def _upgrade(port: int, method: str, path: str, body: bytes = b"") -> tuple[dict, bytes, H2Client]:
    """HTTP/1.1 ``Upgrade: h2c`` (RFC 7540 §3.2) by hand; the answer comes as stream 1."""
    c = H2Client(port)
    settings = c.conn.initiate_upgrade_connection()
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            f"Upgrade: h2c\r\nHTTP2-Settings: {settings.decode()}\r\n")
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    c.sock.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.sock.recv(65536)
        assert chunk, data
        data += chunk
    status_line, rest = data.split(b"\r\n\r\n", 1)
    assert status_line.startswith(b"HTTP/1.1 101"), status_line
    assert b"upgrade: h2c" in status_line.lower()
    c.flush()  # the preface and SETTINGS
    c.responses[1] = {"headers": None, "body": b"", "done": False, "at": None}
    if rest:
        for e in c.conn.receive_data(rest):
            if isinstance(e, h2.events.ResponseReceived):
                c.responses[1]["headers"] = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived):
                c.responses[1]["body"] += e.data
            elif isinstance(e, h2.events.StreamEnded):
                c.responses[1]["done"] = True
        c.flush()
    c.pump([1])
    return c.responses[1]["headers"], c.responses[1]["body"], c


def test_h2c_upgrade_without_body(srv):
    headers, body, c = _upgrade(srv.port, "GET", "/plaintext")
    try:
        assert headers[":status"] == "200" and body == b"Hello, World!"
        sid = c.request("/json")  # the connection goes on in HTTP/2: stream 3
        assert sid == 3
        c.pump([sid])
        assert c.responses[3]["headers"][":status"] == "200"
    finally:
        c.close()


def test_h2c_upgrade_with_body(srv):
    payload = os.urandom(3000)
    name = f"up-{srv.engine}.bin"
    headers, body, c = _upgrade(srv.port, "PUT", f"/files/{name}", payload)
    try:
        assert headers[":status"] in ("200", "201") and f"{len(payload)} bytes".encode() in body
        sid = c.request(f"/files/{name}")
        c.pump([sid])
        assert c.responses[sid]["body"] == payload
    finally:
        c.close()


# -- every route over HTTP/2 (httpx, prior knowledge and TLS) ---------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_every_route_over_http2(srv, tls):
    base = f"https://127.0.0.1:{srv.tls_port}" if tls else f"http://127.0.0.1:{srv.port}"
    with httpx.Client(http1=False, http2=True, verify=False, base_url=base, timeout=10,
                      headers={"accept-encoding": "identity"}) as cl:
        r = cl.get("/")
        assert r.http_version == "HTTP/2" and r.status_code == 200 and b"<html" in r.content.lower()
        css = cl.get("/static/style.css")
        assert css.status_code == 200 and int(css.headers["content-length"]) == len(css.content)
        etag = css.headers["etag"]
        assert cl.get("/static/style.css", headers={"if-none-match": etag}).status_code == 304
        part = cl.get("/static/1mb.bin", headers={"range": "bytes=10-19"})
        with open(os.path.join(WWW, "static", "1mb.bin"), "rb") as f:
            blob = f.read()
        assert part.status_code == 206 and part.content == blob[10:20]
        whole = cl.get("/static/1mb.bin")
        assert whole.content == blob  # 1 MiB: many DATA frames and WINDOW_UPDATEs
        head = cl.head("/static/style.css")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == css.headers["content-length"]
        assert cl.get("/plaintext").content == b"Hello, World!"
        assert cl.get("/json").json() == {"message": "Hello, World!"}
        assert cl.get("/echo/hi%20there").content == b"hi there"
        assert cl.post("/", content=b"hello").text == "received 5 bytes\n"
        name = f"h2-{srv.engine}-{int(tls)}.txt"
        up = cl.post(f"/files/{name}", content=b"z" * 100_000)  # > the 65535 initial window
        assert up.status_code in (200, 201)
        assert cl.get(f"/files/{name}").content == b"z" * 100_000
        assert cl.get("/io?ms=10").text == "waited 10 ms\n"
        assert cl.get("/cpu?n=1000").text.startswith("cpu n=1000 ")
        st = cl.get("/stream?chunks=3&size=100")
        assert st.status_code == 200 and len(st.content) == 300
        sse = cl.get("/sse?count=2&interval_ms=10")
        assert sse.headers["content-type"] == "text/event-stream" and sse.text.count("data: ") == 2
        assert cl.get("/nope").status_code == 404
        metrics = cl.get("/_metrics").json()
        assert isinstance(metrics, dict)


# -- concurrency ------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["threadpool", "selectors", "asyncio"])
def test_twenty_streams_on_one_connection_run_concurrently(srv):
    c = H2Client(srv.port)
    try:
        c.start()
        start = time.monotonic()
        sids = [c.request("/io?ms=200") for _ in range(20)]
        c.pump(sids)
        elapsed = max(c.responses[s]["at"] for s in sids) - start
    finally:
        c.close()
    assert all(c.responses[s]["body"] == b"waited 200 ms\n" for s in sids)
    assert elapsed < 1.5, elapsed  # in order it would be 20 x 0.2 = 4 s


def test_processpool_serves_one_connections_streams_in_order(servers):
    """Documented cost (engines/processpool.py, README): one connection's streams run one after
    another in the worker that owns it, so 5 waits of 200 ms take at least 1 s."""
    srv = servers("processpool")
    c = H2Client(srv.port)
    try:
        c.start()
        start = time.monotonic()
        sids = [c.request("/io?ms=200") for _ in range(5)]
        c.pump(sids)
        elapsed = time.monotonic() - start
    finally:
        c.close()
    order = sorted(sids, key=lambda s: c.responses[s]["at"])
    assert order == sids
    assert elapsed >= 0.95, elapsed


# -- graceful stop and errors -----------------------------------------------------------------

def test_graceful_stop_two_step_goaway_and_in_flight_streams_finish(engine, server_factory):
    """SIGTERM: GOAWAY(2^31-1, NO_ERROR) and a PING; after its ACK the final GOAWAY names the last
    stream received (1), which still gets its whole response; then the server closes (§6.8)."""
    srv = server_factory(engine, "--drain-timeout", "5")
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        w.request(1, path="/io?ms=600")
        wait_in_flight(srv.port, 1)  # stream 1's handler runs: its HEADERS were read
        srv.proc.send_signal(signal.SIGTERM)
        goaways, body, status = [], b"", None
        while True:
            f = w.next_frame()
            if f == CLOSED:
                break
            assert not isinstance(f, str), f"{f} after GOAWAYs {goaways}"
            if isinstance(f, GoAwayFrame):
                goaways.append((f.last_stream_id, f.error_code))
            elif isinstance(f, PingFrame) and "ACK" not in f.flags:
                w.send(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]))
            elif isinstance(f, HeadersFrame) and f.stream_id == 1:
                status = dict(f.decoded)[":status"]
            elif isinstance(f, DataFrame) and f.stream_id == 1:
                body += f.data
    assert goaways == [(MAX_STREAM_ID, 0), (1, 0)]
    assert status == "200" and body == b"waited 600 ms\n"
    assert srv.proc.wait(10) in (0, -15)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_bad_frame_goaway_while_another_connection_is_served(srv, tls):
    port = srv.tls_port if tls else srv.port
    with H2Wire(port, tls=tls) as good, H2Wire(port, tls=tls) as bad:
        good.handshake()
        bad.handshake()
        good.request(1, path="/io?ms=100")
        bad.send(raw(0x6, 0, 1, b"\x00" * 8))  # PING on a stream: connection error PROTOCOL_ERROR
        goaway = bad.expect_connection_error(1)
        assert goaway.last_stream_id == 0
        heads, body, _ = good.response(1)
        assert body == b"waited 100 ms\n"
        good.request(3, path="/plaintext")
        assert good.response(3)[1] == b"Hello, World!"


def test_data_larger_than_the_initial_window_and_a_larger_max_frame_size(srv):
    """A 200 kB request body (window updates needed) and a peer allowing 64 kB frames."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake({4: 65535, 5: 65536})
        body = b"b" * 200_000
        w.send(w.headers(1, w.fields("POST", "/"), end_stream=False))
        sent, windows = 0, {0: 65535, 1: w.server_settings.get(4, 65535)}
        while sent < len(body):
            n = min(16384, len(body) - sent, windows[0], windows[1])
            if n <= 0:
                f = w.wait_for(WindowUpdateFrame, lambda f: f.stream_id in (0, 1))
                windows[f.stream_id] += f.window_increment
                continue
            w.send(DataFrame(1, data=body[sent:sent + n], flags=["END_STREAM"] if sent + n == len(body) else []))
            sent += n
            windows[0] -= n
            windows[1] -= n
        heads, resp, _ = w.response(1)
        assert resp == b"received 200000 bytes\n"
        w.request(3, path="/static/1mb.bin")
        heads, blob, _ = w.response(3)
        assert len(blob) == 1024 * 1024


# -- h2spec's cases, over h2c and TLS ----------------------------------------------------------

@pytest.mark.parametrize("mode", ["h2c", "tls", "h2c-http2-only"])
@pytest.mark.parametrize("key", list(CASES))
@pytest.mark.parametrize("engine", ENGINES)
def test_h2spec_case(servers, engine, key, mode):
    """Each replayed h2spec case over h2c and TLS on the shared ports, and over h2c on a
    ``--http 2`` port (where an invalid preface must get GOAWAY(PROTOCOL_ERROR), §3.4)."""
    srv = servers(engine, "2" if mode == "h2c-http2-only" else "auto")
    tls = mode == "tls"
    with H2Wire(srv.tls_port if tls else srv.port, tls=tls) as w:
        w.http2_only = mode == "h2c-http2-only"
        CASES[key](w)


@pytest.mark.parametrize("engine", ENGINES)
def test_http1_only_port_never_speaks_http2(servers, engine):
    """``--http 1``: no h2c upgrade (the request is answered over HTTP/1.1), a prior-knowledge
    preface is an HTTP/1.x request line with version 2.0 (505), TLS offers http/1.1 only."""
    srv = servers(engine, "1")
    r = exchange(srv.port, b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")[0]
    assert (r.status, r.body) == (200, b"Hello, World!")
    with RawClient(srv.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert c.read_response().status == 505
    with H2Wire(srv.tls_port, tls=True) as w:  # ALPN: no h2 on offer, so none is chosen
        assert w.sock.selected_alpn_protocol() is None


# -- independent command-line clients ---------------------------------------------------------

def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mode", ["prior-knowledge", "upgrade", "tls"])
def test_curl_gets_200_over_http2(srv, mode):
    curl = _tool("curl")
    fmt = ["-s", "-o", "-", "-w", "\n%{http_code} %{http_version}"]
    if mode == "prior-knowledge":
        cmd = [curl, *fmt, "--http2-prior-knowledge", f"http://127.0.0.1:{srv.port}/plaintext"]
    elif mode == "upgrade":
        cmd = [curl, *fmt, "--http2", f"http://127.0.0.1:{srv.port}/plaintext"]
    else:
        cmd = [curl, *fmt, "-k", "--http2", f"https://127.0.0.1:{srv.tls_port}/plaintext"]
    out = _run(cmd)
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("Hello, World!\n200 2"), out.stdout


def test_curl_upgrade_with_body(srv):
    curl = _tool("curl")
    out = _run([curl, "-s", "-w", "\n%{http_code} %{http_version}", "--http2", "--data-binary", "hello h2c",
                f"http://127.0.0.1:{srv.port}/"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "received 9 bytes\n\n200 2", out.stdout


def test_nghttp_multiplexed_requests(srv):
    nghttp = _tool("nghttp")
    out = _run([nghttp, "-n", "-s", f"http://127.0.0.1:{srv.port}/plaintext",
                f"http://127.0.0.1:{srv.port}/json", f"http://127.0.0.1:{srv.port}/static/style.css"])
    assert out.returncode == 0, out.stdout + out.stderr
    # The statistics table: one row per stream, "id responseEnd requestStart process code size path".
    rows = {cols[-1]: (cols[-3], cols[-2]) for line in out.stdout.splitlines()
            if len(cols := line.split()) == 7 and cols[-1].startswith("/")}
    css = os.path.getsize(os.path.join(WWW, "static", "style.css"))
    assert rows.keys() == {"/plaintext", "/json", "/static/style.css"}, out.stdout
    assert rows["/plaintext"] == ("200", "13") and rows["/json"] == ("200", "27"), out.stdout
    size = rows["/static/style.css"][1]  # nghttp prints sizes of 1,024 octets and more as "1K", "2K", ...
    octets = int(size[:-1]) * 1024 if size.endswith("K") else int(size)
    assert rows["/static/style.css"][0] == "200" and 0 < octets < css, (size, css)  # gzip
    out = _run([nghttp, "-v", f"https://127.0.0.1:{srv.tls_port}/plaintext"])
    assert out.returncode == 0 and "Hello, World!" in out.stdout, out.stdout[-2000:]


@pytest.mark.slow
def test_h2load_4000_requests_no_errors(srv):
    h2load = _tool("h2load")
    out = _run([h2load, "-c", "4", "-m", "25", "-n", "4000", f"http://127.0.0.1:{srv.port}/plaintext"], timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert "status codes: 4000 2xx" in out.stdout, out.stdout


# -- request-target rules over HTTP/2 (RFC 9113 §8.3.1) -------------------------------------


@pytest.mark.parametrize("path,authority", [
    ("foo/bar", None),                  # not origin-form
    ("*", None),                        # asterisk only for OPTIONS
    ("/plaintext", "user@127.0.0.1"),   # userinfo in :authority
])
def test_malformed_target_is_a_stream_error(srv, path, authority):
    """A malformed request (§8.1.1) is a stream error of type PROTOCOL_ERROR; the connection
    and its other streams go on."""
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        fields = w.fields(path=path)
        if authority is not None:
            fields = [(k, authority if k == ":authority" else v) for k, v in fields]
        w.send(w.headers(1, fields))
        f = w.expect_stream_error(0x1)
        assert isinstance(f, RstStreamFrame) and f.stream_id == 1, f
        w.request(3, path="/plaintext")
        assert w.response(3)[1] == b"Hello, World!"


def test_options_asterisk_over_http2(srv):
    with H2Wire(srv.port, timeout=5) as w:
        w.handshake()
        w.request(1, method="OPTIONS", path="*")
        heads, _, _ = w.response(1)
        assert dict(heads)[":status"] == "200" and "GET" in dict(heads)["allow"]


# -- the outside differential's cases (docs/http2.md, "RFC 9113 rule by rule") -----------------

def _frames_until_quiet(w: H2Wire) -> list:
    """Every frame until the connection closes or goes quiet (the wire's timeout)."""
    out = []
    while True:
        f = w.next_frame()
        if f in (CLOSED, TIMEOUT):
            return out
        out.append(f)


@pytest.mark.parametrize("case", ["priority-on-itself", "empty-host", "no-authority"])
def test_requests_both_references_refuse_are_refused(srv, case):
    """Cases an outside differential found served by every engine while nghttpd and hypercorn (h2)
    refused them: answered by the shared protocol package, on every engine, and never a HEADERS
    or DATA on a stream the server reset."""
    with H2Wire(srv.port, timeout=2) as w:
        w.handshake()
        if case == "priority-on-itself":
            w.send(PriorityFrame(1, depends_on=1, stream_weight=16), w.headers(1, w.fields(path="/plaintext")))
        elif case == "empty-host":
            w.send(w.headers(1, w.fields(path="/plaintext", extra=[("host", "")])))
        else:
            w.send(w.headers(1, [(k, v) for k, v in w.fields(path="/plaintext") if k != ":authority"]))
        frames = _frames_until_quiet(w)
    ends = [f for f in frames if isinstance(f, (RstStreamFrame, GoAwayFrame))]
    assert ends and ends[0].error_code == 0x1, frames  # PROTOCOL_ERROR, as a stream or a connection error
    if case == "priority-on-itself":
        assert isinstance(ends[0], GoAwayFrame) and not any(isinstance(f, RstStreamFrame) for f in frames), frames
    assert not [f for f in frames if isinstance(f, (HeadersFrame, DataFrame)) and f.stream_id == 1], frames
