"""Each route of create_app, driven without sockets."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from app import create_app
from app.lab import DEFAULT_CPU_N, SAFE_NAME, cpu_work

from appdriver import content, drain, make_request, run


def test_plaintext_is_techempower_exact(lab):
    resp = lab("GET", "/plaintext")
    assert resp.status == 200
    assert resp.headers == [("content-type", "text/plain")]
    assert content(resp) == b"Hello, World!"


def test_plaintext_headers_are_not_shared(lab):
    lab("GET", "/plaintext").headers.append(("x", "y"))
    assert lab("GET", "/plaintext").headers == [("content-type", "text/plain")]


def test_json(lab):
    resp = lab("GET", "/json")
    assert resp.header("content-type") == "application/json"
    assert content(resp) == b'{"message":"Hello, World!"}'
    assert json.loads(content(resp)) == {"message": "Hello, World!"}


def test_echo_and_user_agent(lab):
    assert content(lab("GET", "/echo/hi%20there")) == b"hi there"
    assert content(lab("GET", "/echo/%E2%9C%93")) == "✓".encode()
    assert lab("GET", "/echo/hi").header("content-type").startswith("text/plain")
    assert content(lab("GET", "/user-agent", {"User-Agent": "lab-test/1"})) == b"lab-test/1"
    assert content(lab("GET", "/user-agent")) == b""


def test_health_and_post_root(lab):
    assert content(lab("GET", "/_health")) == b"ok"
    resp = lab("POST", "/", body=b"hello")
    assert resp.status == 200 and len(content(resp)) >= 5
    resp = lab("GET", "/")
    assert resp.status == 200 and resp.header("content-type").startswith("text/html")


def test_io_waits(lab, sleeps):
    resp = lab("GET", "/io?ms=250")
    assert content(resp) == b"waited 250 ms\n" and sleeps == [0.25]
    sleeps.clear()
    assert content(lab("GET", "/io")) == b"waited 100 ms\n" and sleeps == [0.1]
    sleeps.clear()
    assert content(lab("GET", "/io?ms=99999999")) == b"waited 60000 ms\n" and sleeps == [60.0]
    assert content(lab("GET", "/io?ms=-5")) == b"waited 0 ms\n"


@pytest.mark.parametrize("target", ["/io?ms=abc", "/io?ms=1.5", "/cpu?n=x", "/cpu?n=1e6",
                                    "/stream?chunks=two", "/sse?count=%00", "/io?ms=" + "9" * 40])
def test_bad_numbers_are_400(lab, target):
    assert lab("GET", target).status == 400


def test_cpu(lab):
    resp = lab("GET", "/cpu?n=1000")
    assert content(resp) == f"cpu n=1000 result={cpu_work(1000)}\n".encode()
    assert content(lab("GET", "/cpu")) == f"cpu n={DEFAULT_CPU_N} result={cpu_work(DEFAULT_CPU_N)}\n".encode()
    assert b"n=0 " in content(lab("GET", "/cpu?n=-3"))


def test_cpu_work_is_deterministic():
    assert cpu_work(0) == 0
    assert cpu_work(3) == ((0 * 31 + 1) * 31 + 2) & 0xFFFFFFFF
    assert cpu_work(10) == cpu_work(10)


def test_stream(lab, sleeps):
    resp = lab("GET", "/stream?chunks=3&size=20&ms=50")
    assert resp.status == 200 and resp.header("content-type").startswith("text/plain")
    assert sleeps == []  # nothing runs before the body is iterated
    chunks = drain(resp.body)
    assert [len(c) for c in chunks] == [20, 20, 20]
    assert chunks[1].startswith(b"chunk 000001 ")
    assert sleeps == [0.05, 0.05]


def test_stream_defaults_and_tiny_sizes(lab):
    assert [len(c) for c in drain(lab("GET", "/stream").body)] == [1024] * 5
    assert drain(lab("GET", "/stream?chunks=2&size=1").body) == [b"\n", b"\n"]
    assert drain(lab("GET", "/stream?chunks=0").body) == []


def test_stream_is_not_compressed(lab):
    resp = lab("GET", "/stream?chunks=5&size=4096", {"Accept-Encoding": "gzip"})
    assert resp.header("content-encoding") is None


def test_sse(lab, sleeps):
    resp = lab("GET", "/sse?count=3&interval_ms=10")
    assert resp.header("content-type") == "text/event-stream"
    assert resp.header("cache-control") == "no-cache"
    events = drain(resp.body)
    assert events[0] == b'id: 0\ndata: {"seq":0,"of":3}\n\n'
    assert len(events) == 3 and all(e.endswith(b"\n\n") for e in events)
    assert sleeps == [0.01, 0.01]
    sleeps.clear()
    assert len(drain(lab("GET", "/sse").body)) == 5 and sleeps == [1.0] * 4
    assert len(drain(lab("GET", "/sse?count=5000&interval_ms=0").body)) == 1000


def test_metrics_route(lab):
    lab.app.metrics.observe("/plaintext", 200, 0.001)
    resp = lab("GET", "/_metrics")
    data = json.loads(content(resp))
    assert data["engine"] == "test" and data["pid"] == os.getpid()
    assert data["routes"]["/plaintext"]["requests"] == 1


# -- files ------------------------------------------------------------------------------------

def test_upload_then_get(lab):
    resp = lab("POST", "/files/a.txt", body=b"hello")
    assert resp.status == 201 and resp.header("location") == "/files/a.txt"
    assert (lab.data_dir / "a.txt").read_bytes() == b"hello"
    get = lab("GET", "/files/a.txt")
    assert get.status == 200 and content(get) == b"hello"
    assert get.header("content-type").startswith("text/plain")
    resp = lab("PUT", "/files/a.txt", body=b"bye")
    assert resp.status == 200 and content(lab("GET", "/files/a.txt")) == b"bye"
    assert sorted(os.listdir(lab.data_dir)) == ["a.txt"]  # no temp files left


def test_files_ranges_and_conditionals(lab):
    lab("PUT", "/files/r.bin", body=bytes(range(100)))
    resp = lab("GET", "/files/r.bin", {"Range": "bytes=10-19"})
    assert resp.status == 206 and content(resp) == bytes(range(10, 20))
    etag = lab("GET", "/files/r.bin").header("etag")
    assert lab("GET", "/files/r.bin", {"If-None-Match": etag}).status == 304


def test_missing_file_is_404(lab):
    assert lab("GET", "/files/nothing.txt").status == 404


@pytest.mark.parametrize("name", [".hidden", "..", "a%2Fb", "a%20b", "x" * 129, "%2e%2e", "a%00",
                                  "caf%C3%A9"])
def test_unsafe_names_are_400(lab, name):
    assert lab("POST", f"/files/{name}", body=b"x").status in (400, 404)
    assert lab("GET", f"/files/{name}").status in (400, 404)
    assert os.listdir(lab.data_dir) == []


def test_safe_name_rule():
    assert SAFE_NAME.fullmatch("a.txt") and SAFE_NAME.fullmatch("A-b_c.9") and SAFE_NAME.fullmatch("x" * 128)
    for bad in (".a", "", "a/b", "a b", "x" * 129, "é"):
        assert not SAFE_NAME.fullmatch(bad)


def test_write_error_is_500_and_leaves_nothing(lab, monkeypatch):
    lab("POST", "/files/keep.txt", body=b"old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    resp = lab("POST", "/files/keep.txt", body=b"new")
    assert resp.status == 500
    monkeypatch.undo()
    assert sorted(os.listdir(lab.data_dir)) == ["keep.txt"]
    assert (lab.data_dir / "keep.txt").read_bytes() == b"old"


def test_failed_write_in_the_middle_removes_the_temp_file(lab, monkeypatch):
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:1])
            raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    assert lab("PUT", "/files/new.txt", body=b"abcdef").status == 500
    monkeypatch.undo()
    assert os.listdir(lab.data_dir) == []


def test_body_errors_pass_through(lab):
    from app import HTTPError

    async def too_big():
        raise HTTPError(413, "request body too large")

    request = make_request("POST", "/files/big.bin")
    request.body_reader = too_big
    assert run(lab.app.handle(request)).status == 413
    assert os.listdir(lab.data_dir) == []


def test_create_app_makes_the_data_dir(tmp_path, www):
    create_app(str(www), str(tmp_path / "new" / "data"))
    assert (tmp_path / "new" / "data").is_dir()


def test_index_is_gzipped_when_asked(lab):
    resp = lab("GET", "/", {"Accept-Encoding": "gzip, deflate"})
    raw = content(lab("GET", "/"))
    assert len(raw) > 1024
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(content(resp)) == raw
