"""Virtual hosts, the expect check and the request context, without sockets (app/hosts.py,
App.host / App.check_expect in app/routing.py, GET /_conn and POST /private in app/lab.py)."""

from __future__ import annotations

import json

import pytest

from app import App, HTTPError, Response
from app.hosts import cert_covers, host_of, name_matches, safe_request_id
from app.lab import DEMO_HOST
from app.messages import ConnectionInfo, Request

from appdriver import content, run


@pytest.mark.parametrize("authority, host", [
    ("example.com", "example.com"), ("Example.COM:8080", "example.com"), ("example.com.", "example.com"),
    ("[::1]:8443", "::1"), ("[::1]", "::1"), ("127.0.0.1:80", "127.0.0.1"), ("", ""), ("[::1", ""),
    ("user@example.com:1", "example.com"),
])
def test_host_of(authority, host):
    assert host_of(authority) == host


@pytest.mark.parametrize("pattern, host, ok", [
    ("example.com", "EXAMPLE.com", True), ("example.com", "www.example.com", False),
    ("*.example.com", "a.example.com", True), ("*.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", False), ("*.example.com", ".example.com", False),
    ("127.0.0.1", "127.0.0.1", True), ("::1", "0:0:0:0:0:0:0:1", True), ("*.0.0.1", "127.0.0.1", False),
    ("localhost", "", False),
])
def test_name_matches(pattern, host, ok):
    assert name_matches(pattern, host) is ok


def test_cert_covers():
    names = ("localhost", "127.0.0.1", "::1")
    assert cert_covers(names, "localhost") and cert_covers(names, "::1")
    assert not cert_covers(names, "demo.localhost") and not cert_covers((), "localhost")


@pytest.mark.parametrize("value, ok", [
    ("abc-123", True), ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("a" * 128, True), ("a" * 129, False),
    ("has space", False), ('q"uote', False), ("", False), (None, False), ("x\ty", False), ("é", False),
])
def test_safe_request_id(value, ok):
    assert safe_request_id(value) == (value if ok else None)


def req(method="GET", target="/", authority="", headers=()) -> Request:
    return Request(method=method, target=target, headers=list(headers), authority=authority)


def vhost_app() -> App:
    app = App()

    @app.get("/")
    async def default(request):
        return Response.text("default")

    site = app.host("Example.com")

    @site.get("/")
    async def example(request):
        return Response.text("example")

    @app.host("*.wild.test").get("/")
    async def wild(request):
        return Response.text("wild")

    return app


@pytest.mark.parametrize("authority, body", [
    ("example.com", b"example"), ("EXAMPLE.COM:8080", b"example"), ("example.com.", b"example"),
    ("a.wild.test", b"wild"), ("wild.test", b"default"), ("a.b.wild.test", b"default"),
    ("other.test", b"default"), ("", b"default"), ("127.0.0.1:8080", b"default"),
])
def test_virtual_host_dispatch(authority, body):
    app = vhost_app()
    request = req(authority=authority)
    assert content(run(app.handle(request))) == body


def test_virtual_host_routes_are_its_own_and_metrics_say_which():
    app = vhost_app()
    assert app.host("EXAMPLE.COM.") is app.host("example.com")
    assert app.hosts() == ["*.wild.test", "example.com"]
    request = req(target="/", authority="example.com")
    run(app.handle(request))
    assert request.route == "example.com/"
    assert run(app.handle(req(target="/missing", authority="example.com"))).status == 404
    assert app.host("example.com").metrics is app.metrics


@pytest.mark.parametrize("name", ["", "a b", "example.com:80", "a/b", "*", "a.*.com", "*.*.com"])
def test_virtual_host_name_validated(name):
    with pytest.raises(ValueError):
        App().host(name)


def test_check_expect_default_accepts_and_417():
    app = App()
    assert app.check_expect(req("POST", headers=[("expect", "100-continue")])) is None
    assert app.check_expect(req("POST", headers=[("expect", "100-Continue ")])) is None
    assert app.check_expect(req("POST")) is None
    assert app.check_expect(req("POST", headers=[("expect", "teapot")])).status == 417


def test_check_expect_hooks():
    seen = []

    def refuse_big(request):
        seen.append((request.method, request.target, request.header("content-length")))
        if int(request.header("content-length") or 0) > 10:
            return Response.text("too big", status=413)
        return None

    app = App(expect_check=refuse_big)
    big = req("PUT", "/up?x=1", headers=[("content-length", "11")])
    assert app.check_expect(big).status == 413
    assert app.check_expect(req("PUT", headers=[("content-length", "3")])) is None
    assert seen[0] == ("PUT", "/up?x=1", "11")

    site = app.host("example.com")

    @site.expect
    def site_hook(request):
        raise HTTPError(401, "login first", [("www-authenticate", "Basic")])

    refused = app.check_expect(req("POST", authority="example.com"))
    assert refused.status == 401 and refused.header("www-authenticate") == "Basic"
    assert app.check_expect(req("PUT", authority="other", headers=[("content-length", "3")])) is None

    @app.expect
    def broken(request):
        raise RuntimeError("bug")

    assert app.check_expect(req("POST")).status == 500


def test_connection_info_as_dict():
    info = ConnectionInfo(connection_id=3, engine="asyncio", peer=("127.0.0.1", 5), local=("127.0.0.1", 8443),
                          tls=True, tls_version="TLSv1.3", alpn="h2", sni="localhost",
                          cert_names=("localhost",), pid=9)
    d = info.as_dict()
    assert json.loads(json.dumps(d)) == {
        "connection_id": 3, "engine": "asyncio", "peer": ["127.0.0.1", 5], "local": ["127.0.0.1", 8443],
        "tls": True, "tls_version": "TLSv1.3", "alpn": "h2", "sni": "localhost",
        "cert_names": ["localhost"], "pid": 9}


def test_lab_conn_route_and_demo_host(lab):
    from appdriver import make_request

    request = make_request("GET", "/_conn")
    request.stream_id = 5
    request.request_id = "rid"
    ctx = json.loads(content(run(lab.app.handle(request))))
    assert ctx["stream_id"] == 5 and ctx["request_id"] == "rid" and ctx["vhost"] is None
    assert set(ctx) >= {"connection_id", "engine", "peer", "tls", "tls_version", "alpn", "sni", "pid"}
    demo = make_request("GET", "/")
    demo.authority = f"{DEMO_HOST}:8080"
    assert content(run(lab.app.handle(demo))).startswith(b"demo.localhost: a virtual host")
    assert lab("GET", "/plaintext").status == 200  # default host unchanged


def test_lab_private_expect_check(lab):
    from appdriver import make_request

    no_auth = make_request("POST", "/private", [("content-length", "3"), ("expect", "100-continue")])
    refused = lab.app.check_expect(no_auth)
    assert refused.status == 401 and refused.header("www-authenticate") == 'Bearer realm="lab"'
    ok = make_request("POST", "/private", [("authorization", "Bearer lab")], b"abc")
    assert lab.app.check_expect(ok) is None
    assert content(run(lab.app.handle(ok))) == b"received 3 bytes\n"
    assert lab("POST", "/private", body=b"abc").status == 401  # sent without Expect: the handler refuses
    assert lab.app.check_expect(make_request("POST", "/", [("content-length", "3")])) is None
