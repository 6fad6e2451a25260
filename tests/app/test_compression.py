"""gzip negotiation (RFC 9110 §12.5.3) and when compression applies."""

from __future__ import annotations

import gzip

import pytest

from app import FileBody, Response
from app.compression import (accepts_gzip, add_vary, is_compressible, maybe_compress,
                             parse_accept_encoding)

from appdriver import make_request

BIG = b"hello world, " * 200  # 2600 bytes


@pytest.mark.parametrize("value,ok", [
    ("gzip", True), ("GZIP", True), ("gzip, deflate, br", True), ("x-gzip", True),
    ("*", True), ("br;q=1.0, *;q=0.1", True), ("gzip;q=0.001", True), ("gzip; q=1", True),
    ("gzip;q=0", False), ("gzip;q=0.0", False), ("gzip;q=0, *", False), ("*;q=0", False),
    ("*;q=0, gzip", True), ("br", False), ("identity", False), ("", False), (None, False),
    ("gzip;q=bogus", False), ("deflate, gzip;q=nan", False),
])
def test_accepts_gzip(value, ok):
    assert accepts_gzip(value) is ok


def test_parse_accept_encoding():
    assert parse_accept_encoding("gzip;q=0.8, br, *;q=0, ,") == {"gzip": 0.8, "br": 1.0, "*": 0.0}
    assert parse_accept_encoding("gzip;q=5") == {"gzip": 1.0}


@pytest.mark.parametrize("ctype,ok", [
    ("text/html", True), ("text/plain; charset=utf-8", True), ("application/json", True),
    ("application/javascript", True), ("image/svg+xml; charset=utf-8", True),
    ("application/problem+json", True), ("application/atom+xml", True),
    ("image/png", False), ("application/octet-stream", False), ("font/woff2", False), (None, False),
])
def test_is_compressible(ctype, ok):
    assert is_compressible(ctype) is ok


def gz_request(value="gzip"):
    return make_request("GET", "/", {"accept-encoding": value} if value is not None else None)


def test_compresses_big_text():
    resp = Response(headers=[("content-type", "text/plain"), ("etag", '"abc"')], body=BIG)
    out = maybe_compress(gz_request(), resp)
    assert out.header("content-encoding") == "gzip" and out.header("vary") == "accept-encoding"
    assert gzip.decompress(out.body) == BIG
    assert out.header("etag") == 'W/"abc"'
    assert out.header("content-length") is None  # the glue computes it
    assert resp.headers == [("content-type", "text/plain"), ("etag", '"abc"')]  # not mutated


def test_is_deterministic():
    resp = Response(headers=[("content-type", "text/plain")], body=BIG)
    assert maybe_compress(gz_request(), resp).body == maybe_compress(gz_request(), resp).body


def test_vary_even_without_gzip():
    resp = Response(headers=[("content-type", "text/plain")], body=BIG)
    out = maybe_compress(gz_request(None), resp)
    assert out.body == BIG and out.header("content-encoding") is None
    assert out.header("vary") == "accept-encoding"


@pytest.mark.parametrize("resp", [
    Response(headers=[("content-type", "text/plain")], body=b"short"),
    Response(headers=[("content-type", "image/png")], body=BIG),
    Response(headers=[("content-type", "text/plain"), ("content-encoding", "br")], body=BIG),
    Response(status=206, headers=[("content-type", "text/plain"), ("content-range", "bytes 0-1/9")], body=BIG),
    Response(status=304, headers=[("content-type", "text/plain")], body=b""),
    Response(status=204, headers=[], body=b""),
    Response(status=404, headers=[("content-type", "text/plain")], body=BIG),
])
def test_left_alone(resp):
    assert maybe_compress(gz_request(), resp) is resp


def test_streams_are_left_alone():
    async def gen():
        yield BIG

    resp = Response(headers=[("content-type", "text/plain")], body=gen())
    assert maybe_compress(gz_request(), resp) is resp


def test_add_vary_merges():
    assert add_vary([("vary", "origin")]) == [("vary", "origin, accept-encoding")]
    assert add_vary([("vary", "Accept-Encoding")]) == [("vary", "Accept-Encoding")]
    assert add_vary([("vary", "*")]) == [("vary", "*")]


def test_file_bodies_are_compressed_and_cached(tmp_path):
    from app import compression

    path = tmp_path / "page.html"
    path.write_bytes(BIG)
    body = FileBody(path=str(path), offset=0, count=len(BIG))
    resp = Response(headers=[("content-type", "text/html"), ("accept-ranges", "bytes")], body=body)
    out = maybe_compress(gz_request(), resp)
    assert gzip.decompress(out.body) == BIG and out.header("accept-ranges") is None
    compression._cache.clear()
    calls = []
    real = gzip.compress
    try:
        gzip.compress = lambda *a, **k: calls.append(1) or real(*a, **k)
        maybe_compress(gz_request(), resp)
        maybe_compress(gz_request(), resp)
    finally:
        gzip.compress = real
    assert calls == [1]
    # a changed file is compressed again (the key holds mtime and size)
    path.write_bytes(BIG + b"more")
    body2 = FileBody(path=str(path), offset=0, count=len(BIG) + 4)
    out = maybe_compress(gz_request(), Response(headers=[("content-type", "text/html")], body=body2))
    assert gzip.decompress(out.body) == BIG + b"more"


def test_partial_or_missing_file_bodies_are_sent_as_they_are(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(BIG)
    part = FileBody(path=str(path), offset=10, count=len(BIG) - 10)
    out = maybe_compress(gz_request(), Response(headers=[("content-type", "text/plain")], body=part))
    assert out.body is part
    gone = FileBody(path=str(tmp_path / "gone.txt"), offset=0, count=5000)
    out = maybe_compress(gz_request(), Response(headers=[("content-type", "text/plain")], body=gone))
    assert out.body is gone


def test_cache_is_bounded():
    from app.compression import _Cache

    cache = _Cache(entries=2, max_bytes=10)
    cache.put(("a", 0, 0), b"12345")
    cache.put(("b", 0, 0), b"12345")
    assert cache.get(("a", 0, 0)) is not None  # a is now the most recent
    cache.put(("c", 0, 0), b"1")
    assert cache.get(("b", 0, 0)) is None and cache.get(("a", 0, 0)) == b"12345"
    cache.put(("d", 0, 0), b"123456789")
    assert cache.get(("a", 0, 0)) is None


def test_static_304_carries_vary_and_gzipped_etag_is_weak(lab):
    first = lab("GET", "/", {"Accept-Encoding": "gzip"})
    plain = lab("GET", "/")
    assert first.header("etag") == "W/" + plain.header("etag")
    # the weak tag a browser got with the gzip body still revalidates (weak comparison)
    again = lab("GET", "/", {"Accept-Encoding": "gzip", "If-None-Match": first.header("etag")})
    assert again.status == 304 and again.header("vary") == "accept-encoding"
