"""The router: parameters, 404/405/501, HEAD, OPTIONS, errors -> statuses, cancellation."""

from __future__ import annotations

import inspect
import logging

import pytest

from app import App, HTTPError, Response
from app.routing import KNOWN_METHODS, percent_decode

from appdriver import content, make_request, run


def build() -> App:
    app = App()

    @app.get("/hello")
    async def hello(request):
        return Response.text(f"hello {request.method}")

    @app.route("/items/{item_id}", methods=["GET", "DELETE"])
    async def item(request):
        return Response.text(request.path_params["item_id"])

    @app.get("/tree/{rest:path}")
    async def tree(request):
        return Response.text("rest=" + request.path_params["rest"])

    @app.post("/submit")
    async def submit(request):
        return Response.text("got " + (await request.body()).decode(), status=201)

    @app.get("/teapot")
    async def teapot(request):
        raise HTTPError(418, "short and stout", [("x-tea", "earl grey")])

    @app.get("/bug")
    async def bug(request):
        raise RuntimeError("boom")

    @app.get("/slow")
    async def slow(request):
        await app.wait(0.25)
        return Response.text("done")

    return app


def call(app, method, target, **kw):
    request = make_request(method, target, **kw)
    return request, run(app.handle(request))


def test_literal_route_and_route_attribute():
    req, resp = call(build(), "GET", "/hello")
    assert (resp.status, content(resp)) == (200, b"hello GET")
    assert req.route == "/hello"


def test_param_is_one_segment_and_decoded():
    app = build()
    req, resp = call(app, "GET", "/items/a%20b%C3%A9")
    assert content(resp) == "a bé".encode()
    assert req.route == "/items/{item_id}" and req.path_params == {"item_id": "a bé"}
    assert call(app, "GET", "/items/a/b")[1].status == 404
    assert call(app, "GET", "/items/")[1].status == 404


def test_param_bad_percent_encoding_is_400():
    app = build()
    for bad in ("/items/%zz", "/items/%c0%ae", "/items/%e9", "/items/%4"):
        assert call(app, "GET", bad)[1].status == 400, bad


def test_path_param_takes_the_rest_undecoded():
    app = build()
    assert content(call(app, "GET", "/tree/a/b%2Fc")[1]) == b"rest=a/b%2Fc"
    assert content(call(app, "GET", "/tree/")[1]) == b"rest="


def test_query_string_does_not_affect_routing():
    assert call(build(), "GET", "/hello?x=1")[1].status == 200


def test_404():
    req, resp = call(build(), "GET", "/nope")
    assert resp.status == 404 and req.route is None
    assert resp.header("content-type").startswith("text/plain") and b"404" in content(resp)


def test_405_has_allow():
    app = build()
    resp = call(app, "POST", "/hello")[1]
    assert resp.status == 405
    assert resp.header("allow") == "GET, HEAD, OPTIONS"
    resp = call(app, "PUT", "/items/3")[1]
    assert resp.status == 405 and resp.header("allow") == "DELETE, GET, HEAD, OPTIONS"
    assert call(app, "DELETE", "/items/3")[1].status == 200


def test_501_for_unknown_methods():
    app = build()
    for method in ("BREW", "get", "PROPFIND"):
        assert call(app, method, "/hello")[1].status == 501
    assert call(app, "FOO", "/nope")[1].status == 501


def test_known_methods():
    assert KNOWN_METHODS == {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def test_head_falls_back_to_get_and_keeps_the_body():
    resp = call(build(), "HEAD", "/hello")[1]
    # the handler ran (it saw HEAD); the glue drops the body but keeps its length
    assert resp.status == 200 and content(resp) == b"hello HEAD"


def test_options():
    app = build()
    resp = call(app, "OPTIONS", "*")[1]
    assert resp.status == 200
    assert resp.header("allow") == "DELETE, GET, HEAD, OPTIONS, POST"
    resp = call(app, "OPTIONS", "/items/1")[1]
    assert resp.status == 204 and resp.header("allow") == "DELETE, GET, HEAD, OPTIONS"
    assert call(app, "GET", "*")[1].status == 400


def test_post_reads_the_body():
    resp = call(build(), "POST", "/submit", body=b"data")[1]
    assert (resp.status, content(resp)) == (201, b"got data")


def test_http_error_becomes_its_status():
    resp = call(build(), "GET", "/teapot")[1]
    assert resp.status == 418 and resp.header("x-tea") == "earl grey"
    assert content(resp) == b"418 I'm a Teapot: short and stout\n"


def test_exception_is_500_and_logged_once(caplog):
    with caplog.at_level(logging.ERROR, logger="lab.app"):
        resp = call(build(), "GET", "/bug")[1]
    assert resp.status == 500 and b"boom" not in content(resp)
    assert len([r for r in caplog.records if r.name == "lab.app"]) == 1


def test_wait_yields_a_sleep_effect(sleeps):
    resp = call(build(), "GET", "/slow")[1]
    assert content(resp) == b"done" and sleeps == [0.25]


def test_closing_the_coroutine_propagates():
    """The glue cancels a handler by closing its coroutine: GeneratorExit is not turned into 500."""
    app = build()
    coro = app.handle(make_request("GET", "/slow"))
    coro.send(None)  # now suspended at the wait
    with pytest.raises(GeneratorExit):  # a handler turning it into a 500 would StopIteration
        coro.throw(GeneratorExit)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_propagate(exc):
    app = App()

    @app.get("/x")
    async def x(request):
        raise exc()

    with pytest.raises(exc):
        run(app.handle(make_request("GET", "/x")))


def test_fallback_only_for_get_and_head():
    app = build()

    async def fallback(request):
        return Response.text("fallback " + request.path_params["path"])

    app.fallback = fallback
    req, resp = call(app, "GET", "/some/file.txt")
    assert content(resp) == b"fallback some/file.txt" and req.route == "/{path:path}"
    assert call(app, "POST", "/some/file.txt")[1].status == 404
    assert call(app, "GET", "/hello")[1].status == 200  # routes come first


def test_registration_errors():
    app = build()
    with pytest.raises(ValueError):
        app.add_route("/hello", lambda r: None, ["GET"])
    with pytest.raises(ValueError):
        app.add_route("nope", lambda r: None)
    with pytest.raises(ValueError):
        app.add_route("/x/{a}/{a}", lambda r: None)
    with pytest.raises(ValueError):
        app.add_route("/x/{a", lambda r: None)
    with pytest.raises(ValueError):
        app.add_route("/x", lambda r: None, ["BREW"])


def test_expect_check_defaults_to_none():
    assert App().expect_check is None


def test_percent_decode():
    assert percent_decode("a%20b") == "a b"
    assert percent_decode("plain") == "plain"
    for bad in ("%", "%2", "%g0", "%ff", "%c0%ae", "%ed%a0%80"):
        with pytest.raises(ValueError):
            percent_decode(bad)
