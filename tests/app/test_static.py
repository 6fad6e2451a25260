"""Static files: MIME types, validators, 304, ranges, and that no path escapes www/."""

from __future__ import annotations

import email.utils
import hashlib
import os
import sys

import pytest
from hypothesis import given, settings, strategies as st

from app.static import StaticFiles, content_type_for, parse_range, resolve

from appdriver import ROOT, WWW, content

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from make_www_blobs import one_mib  # noqa: E402


def test_index_and_pages(lab):
    for target in ("/", "/index.html", "/models.html", "/results.html"):
        resp = lab("GET", target)
        assert resp.status == 200, target
        assert resp.header("content-type") == "text/html; charset=utf-8"
        assert b"<html" in content(resp).lower()
    assert b"Little" in content(lab("GET", "/models.html"))
    assert b"/results.html" in content(lab("GET", "/"))


@pytest.mark.parametrize("target,ctype", [
    ("/static/style.css", "text/css; charset=utf-8"),
    ("/static/logo.svg", "image/svg+xml; charset=utf-8"),
    ("/static/hello.txt", "text/plain; charset=utf-8"),
])
def test_mime_types(lab, target, ctype):
    resp = lab("GET", target)
    assert resp.status == 200 and resp.header("content-type") == ctype


def test_content_type_for():
    assert content_type_for("a.js") == "text/javascript; charset=utf-8"
    assert content_type_for("a.json") == "application/json; charset=utf-8"
    assert content_type_for("a.woff2") == "font/woff2"
    assert content_type_for("a.webp") == "image/webp"
    assert content_type_for("a.bin") == "application/octet-stream"
    assert content_type_for("noext") == "application/octet-stream"
    assert content_type_for("A.CSS").startswith("text/css")


def test_file_body_and_validators(lab):
    resp = lab("GET", "/static/hello.txt")
    path = lab.www / "static" / "hello.txt"
    st_ = os.stat(path)
    assert resp.body.path == os.path.realpath(path)
    assert (resp.body.offset, resp.body.count) == (0, st_.st_size)
    assert resp.header("etag") == f'"{st_.st_mtime_ns:x}-{st_.st_size:x}"'
    assert resp.header("last-modified") == email.utils.formatdate(int(st_.st_mtime), usegmt=True)
    assert resp.header("accept-ranges") == "bytes"


def test_the_committed_1mb_file_is_reproducible():
    with open(os.path.join(WWW, "static", "1mb.bin"), "rb") as f:
        data = f.read()
    assert len(data) == 1024 * 1024
    assert hashlib.sha256(data).digest() == hashlib.sha256(one_mib()).digest()


def test_1mb_is_served_whole_and_not_gzipped(tmp_path):
    from app import create_app
    from appdriver import make_request, run
    app = create_app(WWW, str(tmp_path))
    resp = run(app.handle(make_request("GET", "/static/1mb.bin", {"accept-encoding": "gzip"})))
    assert resp.status == 200 and resp.body.count == 1024 * 1024
    assert resp.header("content-type") == "application/octet-stream"
    assert resp.header("content-encoding") is None


def test_if_none_match(lab):
    etag = lab("GET", "/static/hello.txt").header("etag")
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        resp = lab("GET", "/static/hello.txt", {"If-None-Match": value})
        assert resp.status == 304 and resp.body == b"", value
        assert resp.header("etag") == etag
    assert lab("GET", "/static/hello.txt", {"If-None-Match": '"other"'}).status == 200
    assert lab("HEAD", "/static/hello.txt", {"If-None-Match": etag}).status == 304


def test_if_modified_since(lab):
    lm = lab("GET", "/static/hello.txt").header("last-modified")
    assert lab("GET", "/static/hello.txt", {"If-Modified-Since": lm}).status == 304
    assert lab("GET", "/static/hello.txt", {"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}).status == 200
    assert lab("GET", "/static/hello.txt", {"If-Modified-Since": "garbage"}).status == 200


def test_if_none_match_takes_precedence(lab):
    """RFC 9110 §13.1.3: with If-None-Match, If-Modified-Since is ignored."""
    lm = lab("GET", "/static/hello.txt").header("last-modified")
    resp = lab("GET", "/static/hello.txt", {"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert resp.status == 200


def test_if_match_and_if_unmodified_since(lab):
    etag = lab("GET", "/static/hello.txt").header("etag")
    assert lab("GET", "/static/hello.txt", {"If-Match": etag}).status == 200
    assert lab("GET", "/static/hello.txt", {"If-Match": '"x"'}).status == 412
    assert lab("GET", "/static/hello.txt", {"If-Match": f"W/{etag}"}).status == 412  # strong comparison
    old = "Mon, 01 Jan 1990 00:00:00 GMT"
    assert lab("GET", "/static/hello.txt", {"If-Unmodified-Since": old}).status == 412


@pytest.mark.parametrize("value,expected", [
    ("bytes=0-4", (0, 4)), ("bytes=5-", (5, 31)), ("bytes=-3", (29, 31)), ("bytes=-100", (0, 31)),
    ("bytes=10-1000", (10, 31)), ("BYTES = 1 - 2", (1, 2)),
    ("bytes=32-", "unsatisfiable"), ("bytes=-0", "unsatisfiable"), ("bytes=40-50", "unsatisfiable"),
    ("bytes=0-1,4-5", None), ("bytes=5-1", None), ("items=0-1", None), ("bytes=a-b", None),
    ("bytes=-", None), ("bytes=0-" + "9" * 5000, None),
])
def test_parse_range(value, expected):
    assert parse_range(value, 32) == expected


def test_range_responses(lab):
    data = (lab.www / "static" / "hello.txt").read_bytes()
    size = len(data)
    resp = lab("GET", "/static/hello.txt", {"Range": "bytes=0-4"})
    assert resp.status == 206 and content(resp) == data[:5]
    assert resp.header("content-range") == f"bytes 0-4/{size}"
    resp = lab("GET", "/static/hello.txt", {"Range": "bytes=-6"})
    assert resp.status == 206 and content(resp) == data[-6:]
    resp = lab("GET", "/static/hello.txt", {"Range": f"bytes={size}-"})
    assert resp.status == 416 and resp.header("content-range") == f"bytes */{size}"
    resp = lab("GET", "/static/hello.txt", {"Range": "bytes=0-1,3-4"})
    assert resp.status == 200 and content(resp) == data
    resp = lab("HEAD", "/static/hello.txt", {"Range": "bytes=0-4"})
    assert resp.status == 200  # Range is defined for GET only (RFC 9110 §14.2)


def test_if_range(lab):
    first = lab("GET", "/static/hello.txt")
    etag, lm = first.header("etag"), first.header("last-modified")
    assert lab("GET", "/static/hello.txt", {"Range": "bytes=0-1", "If-Range": etag}).status == 206
    assert lab("GET", "/static/hello.txt", {"Range": "bytes=0-1", "If-Range": lm}).status == 206
    assert lab("GET", "/static/hello.txt", {"Range": "bytes=0-1", "If-Range": '"old"'}).status == 200
    assert lab("GET", "/static/hello.txt", {"Range": "bytes=0-1", "If-Range": f"W/{etag}"}).status == 200


def test_range_is_not_gzipped(lab):
    (lab.www / "big.txt").write_text("lorem ipsum " * 500)
    resp = lab("GET", "/big.txt", {"Range": "bytes=0-99", "Accept-Encoding": "gzip"})
    assert resp.status == 206 and resp.header("content-encoding") is None and len(content(resp)) == 100


def test_directories(lab):
    (lab.www / "docs").mkdir()
    assert lab("GET", "/docs").status == 404
    assert lab("GET", "/docs/").status == 404
    (lab.www / "docs" / "index.html").write_text("<html>docs</html>")
    assert content(lab("GET", "/docs/")) == b"<html>docs</html>"
    assert content(lab("GET", "/docs")) == b"<html>docs</html>"
    assert content(lab("GET", "/static/")) == b"404 Not Found\n"


def test_head(lab):
    resp = lab("HEAD", "/static/style.css")
    assert resp.status == 200 and resp.body.count == os.path.getsize(lab.www / "static" / "style.css")


def test_post_to_a_static_file_is_not_served(lab):
    assert lab("POST", "/models.html").status == 404
    assert lab("POST", "/static/style.css").status == 405


TRAVERSALS = [
    "/..", "/../", "/../etc/passwd", "/static/../../etc/passwd", "/static/../index.html",
    "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%2E%2E/%2E%2E/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fetc%2fpasswd", "/static/..%2F..%2Fetc%2Fpasswd", "/static%2fstyle.css",
    "/static/..%5c..%5cetc%5cpasswd", "/static/..\\..\\etc\\passwd", "/static\\style.css",
    "//etc/passwd", "///etc/passwd", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/index.html%00", "/index.html%00.txt", "/static/style.css%00", "/%00",
    "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/%c0%ae%c0%ae/etc/passwd", "/%c0%afetc%c0%afpasswd",
    "/%e0%80%ae%e0%80%ae/etc/passwd", "/static/%", "/static/%2", "/static/%zz", "/%ff",
    "/./index.html", "/static/./style.css", "/%2e/index.html", "/.hidden", "/static/.%2e/index.html",
    "/static/hello.txt/", "/static/hello.txt/..", "/etc/passwd", "/proc/self/environ",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_is_404(lab, target):
    (lab.www / ".hidden").write_text("secret")
    resp = lab("GET", target)
    assert resp.status == 404, target
    assert b"root:" not in content(resp)


def test_symlink_to_outside_is_404(lab, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, lab.www / "leak.txt")
    os.symlink(tmp_path, lab.www / "static" / "up")
    os.symlink("/etc", lab.www / "etc")
    assert lab("GET", "/leak.txt").status == 404
    assert lab("GET", "/static/up/secret.txt").status == 404
    assert lab("GET", "/etc/passwd").status == 404
    # a symlink that stays inside is fine
    os.symlink(lab.www / "static" / "hello.txt", lab.www / "hi.txt")
    assert lab("GET", "/hi.txt").status == 200


def test_symlinked_index_to_outside_is_404(lab, tmp_path):
    (tmp_path / "outside.html").write_text("no")
    (lab.www / "d").mkdir()
    os.symlink(tmp_path / "outside.html", lab.www / "d" / "index.html")
    assert lab("GET", "/d/").status == 404


def test_root_given_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("a")
    os.symlink(real, tmp_path / "link")
    assert resolve(str(tmp_path / "link"), "a.txt") == os.path.realpath(real / "a.txt")


def test_resolve_basics():
    static = StaticFiles(WWW)
    assert static.resolve("") == os.path.realpath(os.path.join(WWW, "index.html"))
    assert static.resolve("static/style.css") == os.path.realpath(os.path.join(WWW, "static", "style.css"))
    assert static.resolve("static/style%2Ecss") == static.resolve("static/style.css")
    assert static.resolve("/etc/passwd") is None
    assert static.resolve("missing.html") is None


_segment = st.sampled_from(["..", ".", "", "%2e%2e", "%2E%2e", "%2f", "%5c", "\\", "%00", "%c0%ae",
                            "etc", "passwd", "static", "style.css", "index.html", "up", "%", "%e2%80",
                            "..%2f", "%2e", "~", "a b", "é", "%C3%A9", "\x00", "/"])


@pytest.fixture(scope="module")
def property_root(tmp_path_factory):
    """A www root with a symlink to its parent and one to a file outside it."""
    base = tmp_path_factory.mktemp("property")
    root = base / "www"
    (root / "static").mkdir(parents=True)
    for rel in ("index.html", "static/style.css", "static/index.html"):
        (root / rel).write_text("x")
    (base / "passwd").write_text("root:x:0:0")
    os.symlink(base, root / "static" / "up")
    os.symlink(base / "passwd", root / "etc")
    return str(root)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(_segment, st.text(max_size=6)), max_size=8))
def test_resolver_never_escapes(property_root, parts):
    """Whatever the path, the answer is None or a regular file inside the root."""
    result = resolve(property_root, "/".join(parts))
    if result is not None:
        real_root = os.path.realpath(property_root)
        assert os.path.commonpath([real_root, result]) == real_root
        assert os.path.isfile(result)
        assert "passwd" not in result


@settings(max_examples=300, deadline=None)
@given(raw=st.text(alphabet=st.sampled_from(list("./%25cCeE0a\\fF2\x00")), max_size=24))
def test_resolver_never_escapes_on_dot_and_escape_soup(property_root, raw):
    result = resolve(property_root, raw)
    if result is not None:
        real_root = os.path.realpath(property_root)
        assert os.path.commonpath([real_root, result]) == real_root
