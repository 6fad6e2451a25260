"""Serving features on every engine, over HTTP/1.1 and HTTP/2 (plain and TLS): virtual hosts and
SNI certificates, 421 Misdirected Request, a plain and a TLS port together, ``--redirect-http``,
the expect check, the request context (``GET /_conn``), access logs and ``X-Request-Id``.

Two servers per engine, each started once for the module: ``main`` (plain + TLS port, a dev
certificate for ``demo.localhost``, JSON access log to a file) and ``redirect`` (``--redirect-http``,
plain access log). The HTTP/2 peer is the ``h2`` library (independent of the lab's protocol/).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest
from conftest import ROOT, start_server
from rawhttp import RawClient

from app import create_app
from app.messages import ConnectionInfo, Request
from engines.accesslog import AccessLog, format_plain
from engines.listeners import certificate_names, connection_info, dev_certificate, make_tls_context

CA = os.path.join(ROOT, ".certs", "dev-ca.pem")
DEMO = "demo.localhost"
JSON_FIELDS = ["time", "engine", "pid", "connection_id", "stream_id", "request_id", "peer", "protocol",
               "tls", "method", "target", "host", "status", "bytes", "duration_ms"]


# -- servers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """``servers(engine, "main" | "redirect")``: started on first use, stopped at the end; each
    has ``.log`` (its access log path)."""
    started: dict[tuple[str, str], object] = {}

    def get(engine: str, kind: str = "main"):
        key = (engine, kind)
        if key not in started:
            tmp = tmp_path_factory.mktemp(f"{engine}-{kind}")
            log = tmp / "access.log"
            if kind == "main":
                args = ["--tls-port", "0", "--tls-host", DEMO, "--access-log", str(log), "--log-format", "json"]
            else:
                args = ["--tls-port", "0", "--redirect-http", "--access-log", str(log)]
            srv = start_server(engine, *args, tmp_path=tmp)
            srv.log = log
            started[key] = srv
        return started[key]

    yield get
    for srv in started.values():
        srv.stop()


@pytest.fixture
def srv(engine, servers):
    return servers(engine)


def tls_context(sni: str | None, alpn: list[str]) -> ssl.SSLContext:
    """A client context trusting the dev CA; checks the host name when ``sni`` is given."""
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = sni is not None
    if sni is None:
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(alpn)
    return ctx


def h1(port: int, request: bytes, *, tls: bool = False, sni: str | None = None) -> tuple[RawClient, object]:
    """Send raw ``request`` bytes over HTTP/1.1 (TLS with ALPN http/1.1 when ``tls``); returns the
    client (for more reads) and the first response."""
    c = RawClient(port)
    if tls:
        c.sock = tls_context(sni, ["http/1.1"]).wrap_socket(c.sock, server_hostname=sni)
    c.send(request)
    return c, c.read_response()


def get_h1(port: int, target: str, host: str = "127.0.0.1", tls: bool = False, sni: str | None = None,
           extra: str = ""):
    c, r = h1(port, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode(),
              tls=tls, sni=sni)
    c.close()
    return r


class H2:
    """One HTTP/2 connection with the ``h2`` library: prior knowledge over plain TCP, ALPN h2
    over TLS (with SNI ``sni``)."""

    def __init__(self, port: int, tls: bool = False, sni: str | None = None, timeout: float = 10.0) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            sock = tls_context(sni, ["h2"]).wrap_socket(sock, server_hostname=sni)
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.scheme = "https" if tls else "http"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "H2":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, authority: str, headers=(), body: bytes | None = None,
                end: bool = True) -> int:
        """Send a request's HEADERS (and ``body`` when given); ``end=False`` keeps the stream open."""
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", self.scheme), (":authority", authority), (":path", path), *headers]
        self.conn.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.sock.sendall(self.conn.data_to_send())
        return sid

    def read(self, sid: int, until=("end",), on_informational=None) -> dict:
        """Read events of stream ``sid`` until each of ``until`` ("end", "reset") has happened."""
        out = {"status": None, "headers": {}, "body": b"", "informational": [], "reset": None, "ended": False}
        deadline = time.monotonic() + 10
        while not all(out["ended"] if u == "end" else out["reset"] is not None for u in until):
            assert time.monotonic() < deadline, f"stream {sid}: timed out with {out}"
            data = self.sock.recv(65536)
            if not data:
                break
            for e in self.conn.receive_data(data):
                if getattr(e, "stream_id", None) != sid:
                    continue
                if isinstance(e, h2.events.InformationalResponseReceived):
                    out["informational"].append(int(dict(e.headers)[":status"]))
                    if on_informational is not None:
                        on_informational()
                elif isinstance(e, h2.events.ResponseReceived):
                    out["headers"] = dict(e.headers)
                    out["status"] = int(out["headers"][":status"])
                elif isinstance(e, h2.events.DataReceived):
                    out["body"] += e.data
                    self.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                elif isinstance(e, h2.events.StreamEnded):
                    out["ended"] = True
                elif isinstance(e, h2.events.StreamReset):
                    out["reset"] = e.error_code
                    out["ended"] = True
            self.sock.sendall(self.conn.data_to_send())
        return out

    def get(self, path: str, authority: str, headers=()) -> dict:
        return self.read(self.request("GET", path, authority, headers))


# -- request context ------------------------------------------------------------------------------

def test_request_context_per_protocol(engine, srv):
    """``GET /_conn`` over h1 plain, h1 TLS, h2c (prior knowledge) and h2 TLS: every fact right."""
    plain = json.loads(get_h1(srv.port, "/_conn").body)
    assert plain["engine"] == engine and plain["tls"] is False and plain["alpn"] is None
    assert plain["http_version"] == "1.1" and plain["stream_id"] == 1 and plain["sni"] is None
    assert plain["peer"][0] == "127.0.0.1" and plain["local"] == ["127.0.0.1", srv.port]
    assert plain["connection_id"] >= 1 and plain["pid"] > 0 and plain["vhost"] is None

    tls1 = json.loads(get_h1(srv.tls_port, "/_conn", host="localhost", tls=True, sni="localhost").body)
    assert tls1["tls"] is True and tls1["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert tls1["alpn"] == "http/1.1" and tls1["sni"] == "localhost" and tls1["scheme"] == "https"
    assert tls1["local"] == ["127.0.0.1", srv.tls_port]

    with H2(srv.port) as c:
        first = c.get("/_conn", f"127.0.0.1:{srv.port}")
        second = c.get("/_conn", f"127.0.0.1:{srv.port}")
    for r, sid in ((first, 1), (second, 3)):
        ctx = json.loads(r["body"])
        assert ctx["http_version"] == "2" and ctx["stream_id"] == sid and ctx["tls"] is False
        assert ctx["engine"] == engine
    assert json.loads(first["body"])["connection_id"] == json.loads(second["body"])["connection_id"]

    with H2(srv.tls_port, tls=True, sni="localhost") as c:
        ctx = json.loads(c.get("/_conn", f"localhost:{srv.tls_port}")["body"])
    assert ctx["alpn"] == "h2" and ctx["sni"] == "localhost" and ctx["http_version"] == "2"
    assert ctx["tls_version"] in ("TLSv1.2", "TLSv1.3") and "localhost" in ctx["cert_names"]


# -- virtual hosts, SNI, 421 -------------------------------------------------------------------------

def test_virtual_host_by_host_header(srv):
    """Host picks the virtual host (port stripped, any case); unknown hosts get the default."""
    demo = get_h1(srv.port, "/", host=f"Demo.LocalHost:{srv.port}")
    assert demo.status == 200 and demo.body.startswith(b"demo.localhost: a virtual host")
    assert json.loads(get_h1(srv.port, "/_conn", host=DEMO).body)["vhost"] == DEMO
    assert get_h1(srv.port, "/plaintext", host=DEMO).status == 404  # the vhost's own routes only
    for host in ("127.0.0.1", "localhost", "unknown.example"):
        r = get_h1(srv.port, "/plaintext", host=host)
        assert (r.status, r.body) == (200, b"Hello, World!")
        assert json.loads(get_h1(srv.port, "/_conn", host=host).body)["vhost"] is None


def test_virtual_host_by_authority_h2c(srv):
    with H2(srv.port) as c:
        assert json.loads(c.get("/_conn", f"{DEMO}:{srv.port}")["body"])["vhost"] == DEMO
        assert c.get("/plaintext", "unknown.example")["body"] == b"Hello, World!"  # default host


def test_sni_picks_certificate_per_host(srv):
    """The client checks the host name (check_hostname): each SNI name gets a certificate that
    covers it, from the dev CA; over HTTP/1.1 and HTTP/2."""
    for sni, alpn in ((DEMO, "http/1.1"), (DEMO, "h2"), ("localhost", "h2")):
        sock = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
        with tls_context(sni, [alpn]).wrap_socket(sock, server_hostname=sni) as s:
            names = [v for k, v in s.getpeercert()["subjectAltName"] if k == "DNS"]
            assert sni in names and s.selected_alpn_protocol() == alpn
    r = get_h1(srv.tls_port, "/_conn", host=DEMO, tls=True, sni=DEMO)
    ctx = json.loads(r.body)
    assert ctx["sni"] == DEMO and ctx["cert_names"] == [DEMO] and ctx["vhost"] == DEMO


def test_h2_misdirected_request_gets_421(srv):
    """RFC 9113 §9.1.1: on a connection whose certificate (chosen by SNI) does not cover the
    :authority, 421; covered authorities on the same connection still work."""
    with H2(srv.tls_port, tls=True, sni="localhost") as c:
        r = c.get("/", f"{DEMO}:{srv.tls_port}")
        assert r["status"] == 421
        assert c.get("/plaintext", f"127.0.0.1:{srv.tls_port}")["body"] == b"Hello, World!"
        assert c.get("/plaintext", "LOCALHOST")["status"] == 200
    with H2(srv.tls_port, tls=True, sni=DEMO) as c:
        assert c.get("/", DEMO)["body"].startswith(b"demo.localhost:")
        assert c.get("/plaintext", "localhost")["status"] == 421
    # HTTP/1.1 over TLS and h2c are not misdirected: the default host answers
    assert get_h1(srv.tls_port, "/plaintext", host="unknown.example", tls=True, sni="localhost").status == 200


# -- several listeners, redirect ---------------------------------------------------------------------

def test_plain_and_tls_ports_together(srv):
    assert srv.port != srv.tls_port
    assert get_h1(srv.port, "/plaintext").body == b"Hello, World!"
    assert get_h1(srv.tls_port, "/plaintext", tls=True, sni="localhost").body == b"Hello, World!"


def test_redirect_http_308(engine, servers):
    srv = servers(engine, "redirect")
    r = get_h1(srv.port, "/echo/x?y=1", host=f"LocalHost:{srv.port}")
    assert r.status == 308 and r.header("location") == f"https://localhost:{srv.tls_port}/echo/x?y=1"
    c, r = h1(srv.port, b"POST /files/a HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 3\r\n"
                       b"Expect: 100-continue\r\n\r\n")
    with c:
        assert r.status == 308 and r.header("location") == f"https://[::1]:{srv.tls_port}/files/a"
    with H2(srv.port) as c:  # h2c on the plain port is redirected too
        r = c.get("/plaintext", "example.com")
        assert r["status"] == 308 and r["headers"]["location"] == f"https://example.com:{srv.tls_port}/plaintext"
    # the TLS port serves; the redirect target works
    assert get_h1(srv.tls_port, "/echo/x?y=1", host="localhost", tls=True, sni="localhost").body == b"x"
    line = _wait_lines(srv.log, 1)[0]
    assert re.search(r' "GET /echo/x\?y=1 HTTP/1\.1" 308 \d+ [\d.]+ms$', line), line


# -- expect checks -----------------------------------------------------------------------------------

PRIVATE = b"POST /private HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_expect_refused_h1_never_gets_100(srv, tls):
    port = srv.tls_port if tls else srv.port
    c, r = h1(port, PRIVATE + b"\r\n", tls=tls)
    with c:
        assert r.status == 401 and r.header("www-authenticate") == 'Bearer realm="lab"'
        assert r.header("connection") == "close"  # the body's framing is unknown now (RFC 9110 §10.1.1)
        assert c.closed_by_peer()
    c, r = h1(port, PRIVATE + b"Authorization: Bearer lab\r\n\r\n", tls=tls)
    with c:
        assert r.status == 100
        c.send(b"hello")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"received 5 bytes\n")
    c, r = h1(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n", tls=tls)
    with c:
        assert r.status == 417


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_expect_refused_h2_without_reading_the_body(srv, tls):
    """The hook runs on HEADERS: 401 and RST_STREAM(NO_ERROR) before any DATA (RFC 9113 §8.1);
    the connection stays usable; with authorization the 100 comes and the body is read."""
    port = srv.tls_port if tls else srv.port
    with H2(port, tls=tls, sni="localhost" if tls else None) as c:
        sid = c.request("POST", "/private", "localhost", [("content-length", "5")], end=False)
        r = c.read(sid, until=("end", "reset"))
        assert r["status"] == 401 and r["reset"] == 0 and r["informational"] == []
        sid = c.request("POST", "/private", "localhost",
                        [("authorization", "Bearer lab"), ("expect", "100-continue")], end=False)

        def send_body() -> None:
            c.conn.send_data(sid, b"hello", end_stream=True)

        r = c.read(sid, on_informational=send_body)
        assert r["informational"] == [100] and r["status"] == 200 and r["body"] == b"received 5 bytes\n"
        assert c.get("/plaintext", "localhost")["body"] == b"Hello, World!"


def test_expect_default_accepts(srv):
    """Requests with bodies elsewhere are not refused (the lab's hook only guards /private)."""
    c, r = h1(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    with c:
        assert r.status == 100
        c.send(b"abc")
        assert c.read_response().body == b"received 3 bytes\n"
    with H2(srv.port) as c:
        sid = c.request("POST", "/", "localhost", body=b"abcd")
        assert c.read(sid)["body"] == b"received 4 bytes\n"


# -- access logs and request ids -----------------------------------------------------------------------

def _wait_lines(path, n: int, timeout: float = 10.0) -> list[str]:
    """The log's lines once it has at least ``n`` (polls: the log is written after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_access_log_json_and_request_id(engine, srv):
    """One JSON line per request with every field; X-Request-Id echoed (client's when safe)."""
    before = len(_wait_lines(srv.log, 0, 0))
    mine = get_h1(srv.port, "/echo/hi", extra="X-Request-Id: trace-42.a\r\n")
    assert mine.header("x-request-id") == "trace-42.a"
    made = get_h1(srv.port, "/plaintext", extra='X-Request-Id: bad id "quoted"\r\n')
    assert made.header("x-request-id") and made.header("x-request-id") != 'bad id "quoted"'
    with H2(srv.tls_port, tls=True, sni="localhost") as c:
        r = c.get("/json", "localhost", [("x-request-id", "h2-trace")])
    assert r["headers"]["x-request-id"] == "h2-trace"
    lines = _wait_lines(srv.log, before + 3)[before:]
    entries = [json.loads(line) for line in lines]
    by_id = {e["request_id"]: e for e in entries}
    e = by_id["trace-42.a"]
    assert list(e) == JSON_FIELDS
    assert (e["engine"], e["protocol"], e["method"], e["target"], e["status"], e["bytes"]) == \
        (engine, "HTTP/1.1", "GET", "/echo/hi", 200, 2)
    assert e["tls"] is False and e["peer"] == "127.0.0.1" and e["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"])
    assert by_id[made.header("x-request-id")]["target"] == "/plaintext"
    h2e = by_id["h2-trace"]
    assert (h2e["protocol"], h2e["tls"], h2e["stream_id"], h2e["bytes"]) == ("HTTP/2", True, 1, 27)


def test_processpool_log_lines_never_interleave(servers):
    """Two worker processes, 8 client threads, long targets: every line is whole JSON."""
    srv = servers("processpool")
    before = len(_wait_lines(srv.log, 0, 0))
    pad = "p" * 1500

    def client(i: int) -> int:
        with RawClient(srv.port) as c:
            for j in range(25):
                c.send(f"GET /echo/{i}-{j}?{pad} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert c.read_response().status == 200
        return 25

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(client, range(8)))
    lines = _wait_lines(srv.log, before + total)[before:]
    entries = [json.loads(line) for line in lines]  # a torn line would not parse
    assert len(entries) == total
    assert {e["target"] for e in entries} == {f"/echo/{i}-{j}?{pad}" for i in range(8) for j in range(25)}
    assert len({e["pid"] for e in entries}) >= 1


# -- units: the access log line, listeners -------------------------------------------------------------

def _request(**kw) -> Request:
    info = ConnectionInfo(connection_id=7, engine="selectors", peer=("10.0.0.1", 5555), pid=42)
    return Request(method="GET", target=kw.get("target", "/a b\"c"), headers=[], stream_id=3, info=info,
                   request_id="r-1", authority="x")


def test_access_log_plain_line_format(tmp_path):
    log = AccessLog(str(tmp_path / "a.log"), "plain")
    line = format_plain(log.entry(_request(), 200, 13, 0.0015))
    assert re.fullmatch(r'\S+Z 10\.0\.0\.1 selectors pid=42 conn=7 stream=3 id=r-1 '
                        r'"GET /a b\\"c HTTP/1\.1" 200 13 1\.500ms', line), line
    log.write(_request(target="/" + "\u00e9" * 3000), 200, 0, 0.001)
    log.write(_request(), 404, 0, 0.001)
    os.close(log.fd)
    lines = (tmp_path / "a.log").read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[2] == b"" and all(len(x) < 4096 for x in lines)


def test_sni_context_selects_certificate_in_process(tmp_path):
    """make_tls_context's sni_callback: the named host's certificate, else the default; the TLS
    object carries sni_name and cert_names for connection_info."""
    import trustme

    ca = trustme.CA()
    files = {}
    for name in ("default.test", "a.test", "*.wild.test"):
        leaf = ca.issue_cert(name)
        cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        files[name] = (str(cert), str(key))
    assert certificate_names(files["*.wild.test"][0]) == ("*.wild.test",)
    ctx = make_tls_context(*files["default.test"], [("a.test", *files["a.test"]),
                                                    ("*.wild.test", *files["*.wild.test"])])
    for sni, want in (("a.test", ("a.test",)), ("x.wild.test", ("*.wild.test",)),
                      ("other.test", ("default.test",)), (None, ("default.test",))):
        a, b = socket.socketpair()
        result = {}

        def serve() -> None:
            with ctx.wrap_socket(a, server_side=True) as s:
                result["info"] = connection_info(1, "test", None, None, s)

        t = threading.Thread(target=serve)
        t.start()
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        with client.wrap_socket(b, server_hostname=sni):
            pass
        t.join(10)
        info = result["info"]
        assert info.sni == sni and info.cert_names == want and info.tls and info.alpn == "http/1.1"


def test_dev_certificates_share_one_ca(tmp_path):
    from engines.listeners import dev_host_certificate

    cert, key, ca = dev_certificate(str(tmp_path))
    host_cert, host_key = dev_host_certificate("Demo.Test", str(tmp_path))
    assert certificate_names(host_cert) == ("demo.test",)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_verify_locations(ca)
    server = make_tls_context(cert, key, [("demo.test", host_cert, host_key)])
    a, b = socket.socketpair()
    t = threading.Thread(target=lambda: server.wrap_socket(a, server_side=True).close())
    t.start()
    with ctx.wrap_socket(b, server_hostname="demo.test") as s:  # verifies against the dev CA
        assert s.getpeercert()["subjectAltName"] == (("DNS", "demo.test"),)
    t.join(10)
    a.close()


def test_lab_app_is_unchanged_for_localhost(tmp_path):
    app = create_app(os.path.join(ROOT, "www"), str(tmp_path))
    assert app.hosts() == [DEMO]
    assert app.for_host("127.0.0.1:8080") is app and app.for_host("localhost") is app
    assert app.for_host("DEMO.localhost:1") is not app


def test_json_line_is_json_dumps(tmp_path):
    """The hand-written JSON line equals json.dumps of the entry, escapes included."""
    from engines.accesslog import format_json

    log = AccessLog(str(tmp_path / "j.log"), "json")
    os.close(log.fd)
    for target in ("/plain", '/q"b\\s', "/\u00e9\x01\x7f", "/" + "x" * 300):
        entry = log.entry(_request(target=target), 201, 5, 0.0123456)
        assert format_json(entry) == json.dumps(entry, separators=(",", ":"))
        assert list(json.loads(format_json(entry))) == JSON_FIELDS


def test_cli_options():
    from engines.server import parse_args

    c = parse_args(["--tls-port", "0", "--redirect-http", "--tls-host", "a.test", "--tls-host", "b.test",
                    "--tls-cert", "*.x.test=c.pem,k.pem", "--access-log", "--log-format", "json"])
    assert c.tls and c.redirect_http and c.tls_hosts == ("a.test", "b.test")
    assert c.tls_certs == (("*.x.test", "c.pem", "k.pem"),)
    assert c.access_log and c.access_log_file == "-" and c.log_format == "json"
    off = parse_args([])
    assert not off.access_log and not off.redirect_http and not off.tls
    for bad in (["--redirect-http"], ["--tls-cert", "nohost"], ["--tls-cert", "h=only-cert"],
                ["--access-log", "/nonexistent-dir/x.log"], ["--log-format", "xml"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
