"""HTTP/1.x request errors: every status the parser answers, smuggling cases (RFC 9112 §11.2)."""

from __future__ import annotations

import pytest

from protocol.events import ConnectionTerminated, RequestReceived
from protocol.http1 import H1Config, H1Connection

H = b"Host: x\r\n"


def feed(data: bytes, config: H1Config | None = None):
    conn = H1Connection(config)
    conn.set_date("Mon, 01 Jan 2024 00:00:00 GMT")
    events = conn.receive_data(data)
    return conn, events, conn.data_to_send()


def assert_error(data: bytes, status: int, config: H1Config | None = None) -> bytes:
    conn, events, out = feed(data, config)
    assert isinstance(events[-1], ConnectionTerminated), events
    assert events[-1].status == status and events[-1].error_code == 1
    assert not any(isinstance(e, RequestReceived) for e in events)
    assert out.startswith(b"HTTP/1.1 %d " % status)
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")[1:]
    assert b"connection: close" in lines and b"content-type: text/plain; charset=utf-8" in lines
    assert b"content-length: %d" % len(body) in lines
    assert b"date: Mon, 01 Jan 2024 00:00:00 GMT" in lines
    assert body.startswith(b"%d " % status)
    assert conn.closed
    assert conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []
    return body


BAD_REQUESTS = {
    "garbage": b"GARBAGE\r\n\r\n",
    "empty request line": b"\r\n\r\n\r\n",
    "two leading empty lines": b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "no host": b"GET / HTTP/1.1\r\n\r\n",
    "two hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "bad host chars": b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    "two hosts 1.0": b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "tab before colon": b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
    "empty name": b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
    "no colon": b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
    "non-token name": b"GET / HTTP/1.1\r\nHost: x\r\nBad(name): v\r\n\r\n",
    "NUL in value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
    "CTL in value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\n\r\n",
    "DEL in value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n",
    "bare CR in value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
    "obs-fold SP": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n",
    "obs-fold HTAB": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tfolded\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare LF in one line": b"GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n",
    "bare LF request line": b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    "lowercase method ok but bad char": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "target with CTL": b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    "target non-ascii": b"GET /\xe9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    "no version": b"GET /\r\nHost: x\r\n\r\n",
    "lowercase http": b"GET / http/1.1\r\nHost: x\r\n\r\n",
    "version junk": b"GET / HTTP/1.1x\r\nHost: x\r\n\r\n",
    "CL and TE": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "TE and CL": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "CL not digits": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "CL sign": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
    "CL negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "CL empty": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
    "CL hex": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
    "CL list differing": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
    "CL lines differing": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "CL empty member": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\n",
    "TE in HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "TE xchunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "TE chunked not final": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "TE gzip only": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "TE chunked twice": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "TE chunked twice lines": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n"),
    "TE chunked obs-fold": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
    "TE space before colon": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
    "TE vertical tab": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
    "TE empty member": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n",
    "TE chunked with params": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_400(data):
    body = assert_error(data, 400)
    assert b"\r" not in body and b"x\r" not in body and len(body) < 100  # never echoes the request


BAD_CHUNKED = {
    "size not hex": b"zz\r\n",
    "size with sign": b"+5\r\nhello\r\n0\r\n\r\n",
    "size 0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "no CRLF after data": b"5\r\nhelloXX0\r\n\r\n",
    "LF only after data": b"5\r\nhello\n0\r\n\r\n",
    "bare LF in size line": b"5\nhello\r\n0\r\n\r\n",
    "bare LF last chunk": b"0\n\r\n",
    "bare CR in size line": b"5\rx\r\nhello\r\n0\r\n\r\n",
    "overflow digits": b"1" + b"0" * 16 + b"\r\n",
    "leading zeros overflow": b"0" * 17 + b"5\r\nhello\r\n0\r\n\r\n",
    "bad extension": b"5;\x01\r\nhello\r\n0\r\n\r\n",
    "extension too long": b"5;a=" + b"b" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    "bad trailer": b"0\r\nBad Trailer: x\r\n\r\n",
    "bare LF in trailers": b"0\r\nA: b\nC: d\r\n\r\n",
    "space before size": b" 5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("body", BAD_CHUNKED.values(), ids=BAD_CHUNKED.keys())
def test_bad_chunked_400(body):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn = H1Connection()
    events = conn.receive_data(head + body)
    assert isinstance(events[0], RequestReceived)
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].status == 400
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert conn.closed


def test_chunked_extension_accepted():
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn = H1Connection()
    events = conn.receive_data(head + b"5 ; a=b ; c ;d=\"q \\\" x\"\r\nhello\r\n0;last\r\n\r\n")
    assert b"".join(e.data for e in events if hasattr(e, "data")) == b"hello"
    assert type(events[-1]).__name__ == "MessageComplete"


def test_414_target_too_long():
    assert_error(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
    assert_error(b"GET /" + b"a" * 20 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, H1Config(max_target_length=16))


def test_414_when_request_line_exceeds_head_limit_before_complete():
    conn = H1Connection(H1Config(max_header_bytes=1024, max_target_length=512))
    events = conn.receive_data(b"GET /" + b"a" * 2000)
    assert events[-1].status == 414


def test_431_head_too_large():
    assert_error(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431)


def test_431_incomplete_head_too_large():
    conn = H1Connection(H1Config(max_header_bytes=1000))
    assert conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n") == []
    events = conn.receive_data(b"X-Big: " + b"a" * 1000)
    assert events[-1].status == 431


def test_431_too_many_headers():
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    assert_error(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", 431, H1Config(max_headers=8))


def test_431_trailers_too_large():
    conn = H1Connection(H1Config(max_header_bytes=200))
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"0\r\nX-T: " + b"a" * 300)
    assert events[-1].status == 431


def test_413_content_length_too_large():
    assert_error(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413)
    assert_error(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 413, H1Config(max_body_size=10))
    assert_error(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n", 413)


def test_413_chunked_total_too_large():
    conn = H1Connection(H1Config(max_body_size=10))
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"6\r\nabcdef\r\n6\r\n")
    assert events[-1].status == 413
    conn = H1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"ffffffffffffffff\r\n")
    assert events[-1].status == 413


@pytest.mark.parametrize("method", [b"BREW", b"get", b"PROPFIND", b"M-SEARCH"])
def test_501_unknown_method(method):
    assert_error(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n", 501)


def test_501_unknown_transfer_coding_before_chunked():
    assert_error(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)


@pytest.mark.parametrize("version", [b"HTTP/2.5", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/3.0"])
def test_505_version(version):
    assert_error(b"GET / " + version + b"\r\nHost: x\r\n\r\n", 505)


@pytest.mark.parametrize("value", [b"foo", b"100-continue, foo", b"200-ok"])
def test_417_unknown_expectation(value):
    assert_error(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: " + value + b"\r\n\r\n", 417)


def test_expect_ignored_for_http10():
    conn, events, _ = feed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
    assert events[0].expect_continue is False and not conn.closed


def test_duplicate_identical_content_length_accepted():
    for head in (b"Content-Length: 5, 5\r\n", b"Content-Length: 5\r\nContent-Length: 5\r\n"):
        conn, events, _ = feed(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\nhello")
        assert [type(e).__name__ for e in events] == ["RequestReceived", "DataReceived", "MessageComplete"]
        assert events[1].data == b"hello"


@pytest.mark.parametrize("te", [b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"\tchunked\t"])
def test_transfer_encoding_chunked_case_and_ows(te):
    conn, events, _ = feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:" + te + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert [type(e).__name__ for e in events] == ["RequestReceived", "DataReceived", "MessageComplete"]


def test_leading_space_before_field_name_is_fold():
    assert_error(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400)


def test_error_after_partial_input():
    conn = H1Connection()
    assert conn.receive_data(b"GET / HTTP/1.1\r\nHo") == []
    events = conn.receive_data(b"st: x\nA: b")  # bare LF seen before the head is complete
    assert events[-1].status == 400


def test_random_garbage_never_raises():
    import random
    rng = random.Random(7)
    for _ in range(300):
        conn = H1Connection()
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        conn.receive_data(data)
        conn.receive_data(b"\r\n\r\n")
        conn.receive_data(b"")


# -- request-target forms (RFC 9112 §3.2) ----------------------------------------------------

@pytest.mark.parametrize("line", [b"GET foo/bar", b"GET http://u:p@h.example/", b"GET *", b"GET h.example:80",
                                  b"CONNECT /x", b"GET ftp://h.example/", b"GET http:///x"])
def test_non_origin_targets_other_than_the_allowed_forms_are_400(line):
    assert_error(line + b" HTTP/1.1\r\n" + H + b"\r\n", 400)


@pytest.mark.parametrize("target,path,authority", [
    (b"http://h.example/a?b=1", "/a?b=1", "h.example"),
    (b"HTTPS://h.example:8443", "/", "h.example:8443"),
    (b"http://h.example?q", "/?q", "h.example"),
])
def test_absolute_form_gives_origin_form_and_its_authority(target, path, authority):
    _, events, _ = feed(b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n")
    req = events[0]
    assert isinstance(req, RequestReceived) and (req.target, req.authority) == (path, authority)


@pytest.mark.parametrize("line,target", [(b"OPTIONS *", "*"), (b"CONNECT h.example:443", "h.example:443")])
def test_asterisk_and_authority_forms_on_their_methods(line, target):
    _, events, _ = feed(line + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert isinstance(events[0], RequestReceived) and events[0].target == target
