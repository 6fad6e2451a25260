"""Static files from a ``www`` directory: validators, conditional requests, single ranges, no escapes.

URL -> file (one rule: the www directory is served at ``/``)::

    GET /                       -> www/index.html
    GET /models.html            -> www/models.html        (any file under www/, any depth)
    GET /static/style.css       -> www/static/style.css
    GET /static/1mb.bin         -> www/static/1mb.bin
    GET /dir  or  /dir/         -> www/dir/index.html, or 404 when it has none

In :func:`app.lab.create_app` this is the ``GET /`` route, the ``GET /static/{path:path}`` route
and the router's fallback for any other unrouted GET/HEAD. Dotfiles (a segment starting with
``.``) are never served.

Security (:func:`resolve`): the URL path stays percent-encoded until it is checked, so that
``%2F`` can be told from ``/``. Refused (-> ``None`` -> 404): a malformed ``%`` escape, an encoded
``/`` ``\\`` or NUL (``%2F %5C %00``), bytes that are not strict UTF-8 (overlong ``%C0%AE``,
surrogates), backslashes, control characters, empty segments (``//etc/passwd``), ``.`` / ``..``
segments (``%2e%2e`` included, it decodes first), dotfiles, and anything whose
``os.path.realpath`` (symlinks followed) is not inside the root's realpath.

Conditional requests (RFC 9110 §13.2.2 order): If-Match (-> 412), else If-Unmodified-Since (-> 412);
If-None-Match (weak comparison, ``*``) -> 304 for GET/HEAD, else If-Modified-Since -> 304
(If-None-Match takes precedence, §13.1.3). Ranges (RFC 9110 §14) for GET only: one
``bytes=a-b`` / ``a-`` / ``-n`` -> 206 + ``content-range``; none satisfiable -> 416 +
``content-range: bytes */size``; several ranges or a malformed header -> the whole file (200);
``If-Range`` that does not match (strong comparison, or the exact Last-Modified date) -> 200.

Validators: ``etag: "<mtime_ns hex>-<size hex>"`` (strong; gzip makes it weak, see
:mod:`app.compression`), ``last-modified`` from the mtime (``email.utils.formatdate(usegmt=True)``).
Bodies are :class:`FileBody` ``(path, offset, count)``; the engines use ``socket.sendfile``.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat as stat_mod

from .compression import DEFAULT_MIN_SIZE, is_compressible
from .messages import FileBody, Request, Response
from .routing import percent_decode

__all__ = ["StaticFiles", "resolve", "file_response", "content_type_for", "parse_range", "etag_for"]

_EXTRA_TYPES = {
    ".html": "text/html", ".htm": "text/html", ".css": "text/css", ".js": "text/javascript",
    ".mjs": "text/javascript", ".json": "application/json", ".svg": "image/svg+xml",
    ".txt": "text/plain", ".woff2": "font/woff2", ".woff": "font/woff", ".webp": "image/webp",
    ".png": "image/png", ".ico": "image/x-icon", ".wasm": "application/wasm", ".csv": "text/csv",
    ".md": "text/markdown", ".bin": "application/octet-stream", ".xml": "application/xml",
}
#: an encoded ``/``, ``\\`` or NUL: refused before decoding, so ``%2F`` is never a separator
_ENCODED_SEPARATOR = re.compile(r"%(2[fF]|5[cC]|00)")
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RANGE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


def content_type_for(path: str) -> str:
    """The ``content-type`` for a file name; ``text/*`` and JSON get ``; charset=utf-8``."""
    ext = os.path.splitext(path)[1].lower()
    ctype = _EXTRA_TYPES.get(ext) or mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
        ctype += "; charset=utf-8"
    return ctype


def _decode_path(raw: str) -> str | None:
    """Strictly percent-decode ``raw`` (``app.routing.percent_decode``, the one decoder); None for
    anything :func:`resolve` refuses at this stage: a malformed escape, an encoded ``/`` ``\\`` or
    NUL, bytes that are not strict UTF-8, a lone surrogate."""
    if "\\" in raw or "\x00" in raw or _ENCODED_SEPARATOR.search(raw):
        return None
    try:
        text = percent_decode(raw)
        text.encode("utf-8")  # lone surrogates (no escape to decode them from)
    except ValueError:  # UnicodeError is one
        return None
    if "\\" in text or _CONTROL.search(text):
        return None
    return text


def resolve(root: str, raw_path: str, *, root_is_real: bool = False) -> str | None:
    """The real path of the regular file that ``raw_path`` names under ``root``, or None.

    Args:
        root: the directory served (any form; it is made absolute and real here).
        raw_path: the URL path below the mount point, still percent-encoded, without the leading
            ``/`` (``"static/style.css"``; ``""`` is the root). A leading ``/`` is refused, as is
            everything listed in the module doc.

        root_is_real: ``root`` is already ``os.path.realpath(root)`` (saves a realpath call).

    A directory yields its ``index.html`` (also checked to stay inside ``root``).
    """
    text = _decode_path(raw_path)
    if text is None:
        return None
    segments = text.split("/") if text else []
    want_dir = len(segments) > 1 and segments[-1] == ""
    if want_dir:
        segments.pop()  # "dir/" -> the directory itself; "file/" -> nothing
    for seg in segments:
        if not seg or seg.startswith("."):  # "", ".", "..", dotfiles; also an absolute path
            return None
    real_root = root if root_is_real else os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, *segments))
    if not _inside(real_root, real):
        return None
    try:
        st = os.stat(real)
        if stat_mod.S_ISDIR(st.st_mode):
            real = os.path.realpath(os.path.join(real, "index.html"))
            if not _inside(real_root, real):
                return None
            st = os.stat(real)
        elif want_dir:
            return None
    except (OSError, ValueError):
        return None
    return real if stat_mod.S_ISREG(st.st_mode) else None


def _inside(real_root: str, real: str) -> bool:
    try:
        return os.path.commonpath([real_root, real]) == real_root
    except ValueError:
        return False


def etag_for(st: os.stat_result) -> str:
    """The strong entity tag of a file: ``'"<mtime_ns hex>-<size hex>"'`` (RFC 9110 §8.8.3)."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _etags(value: str) -> list[tuple[bool, str]] | None:
    """``If-None-Match`` / ``If-Match`` -> [(weak, '"tag"')], or None for ``*``."""
    if value.strip() == "*":
        return None
    return [(bool(m.group(1)), m.group(2)) for m in _ETAG.finditer(value)]


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None or dt.tzinfo is None:
        return None
    return dt.timestamp()


def parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """A ``Range`` value against a file of ``size`` bytes (RFC 9110 §14.1.2).

    Returns:
        ``(first, last)`` inclusive byte positions for one satisfiable range; ``"unsatisfiable"``
        for one range that is not (-> 416); ``None`` to ignore the header and send it all
        (malformed, another unit, several ranges, ``last < first``).
    """
    if "," in value:
        return None
    m = _RANGE.fullmatch(value.strip())
    if m is None:
        return None
    a, b = m.group(1), m.group(2)
    try:
        if a == "":
            if b == "":
                return None
            n = int(b)  # suffix: the last n bytes
            if n == 0 or size == 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1)
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError:  # too many digits (sys.set_int_max_str_digits)
        return None
    if b and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return (first, min(last, size - 1))


def file_response(request: Request, path: str, st: os.stat_result | None = None,
                  content_type: str | None = None) -> Response:
    """The response for GET/HEAD of file ``path`` (already resolved and checked), with
    validators, conditionals and ranges as in the module doc.

    Raises:
        OSError: ``path`` cannot be stat'ed (the caller decides: 404).
    """
    if st is None:
        st = os.stat(path)
    size = st.st_size
    etag = etag_for(st)
    mtime = int(st.st_mtime)
    last_modified = email.utils.formatdate(mtime, usegmt=True)
    ctype = content_type or content_type_for(path)
    validators = [("etag", etag), ("last-modified", last_modified)]
    if is_compressible(ctype) and size >= DEFAULT_MIN_SIZE:
        validators.append(("vary", "accept-encoding"))
    header = request.header
    # RFC 9110 §13.2.2, steps 1-2: preconditions that fail -> 412
    if_match = header("if-match")
    if if_match is not None:
        tags = _etags(if_match)
        if tags is not None and not any(not weak and tag == etag for weak, tag in tags):
            return Response(status=412, headers=validators, body=b"")
    else:
        ius = _http_date(header("if-unmodified-since"))
        if ius is not None and mtime > ius:
            return Response(status=412, headers=validators, body=b"")
    # steps 3-4: If-None-Match, else If-Modified-Since -> 304 (GET/HEAD)
    inm = header("if-none-match")
    if inm is not None:
        tags = _etags(inm)
        if tags is None or any(tag == etag for _, tag in tags):
            if request.method in ("GET", "HEAD"):
                return Response(status=304, headers=validators, body=b"")
            return Response(status=412, headers=validators, body=b"")
    elif request.method in ("GET", "HEAD"):
        ims = _http_date(header("if-modified-since"))
        if ims is not None and mtime <= ims:
            return Response(status=304, headers=validators, body=b"")
    headers = [("content-type", ctype), *validators, ("accept-ranges", "bytes")]
    # step 5: Range (GET only, §14.2), guarded by If-Range (§13.1.5)
    range_value = header("range") if request.method == "GET" else None
    if range_value is not None and _if_range_holds(header("if-range"), etag, last_modified):
        r = parse_range(range_value, size)
        if r == "unsatisfiable":
            return Response(status=416, headers=[("content-type", "text/plain; charset=utf-8"),
                                                 ("content-range", f"bytes */{size}")],
                            body=b"416 Range Not Satisfiable\n")
        if isinstance(r, tuple):
            first, last = r
            headers.append(("content-range", f"bytes {first}-{last}/{size}"))
            return Response(status=206, headers=headers, body=FileBody(path=path, offset=first, count=last - first + 1))
    return Response(status=200, headers=headers, body=FileBody(path=path, offset=0, count=size))


def _if_range_holds(value: str | None, etag: str, last_modified: str) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison: a weak tag never matches
    return value == last_modified


class StaticFiles:
    """Serve ``root`` (see the module doc). ``await static.serve(request, raw_path)``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def resolve(self, raw_path: str) -> str | None:
        """:func:`resolve` under this root."""
        return resolve(self.root, raw_path, root_is_real=True)

    def serve(self, request: Request, raw_path: str) -> Response:
        """The response for ``raw_path`` (percent-encoded, no leading ``/``): a file response,
        or a 404 text response."""
        path = self.resolve(raw_path)
        if path is not None:
            try:
                return file_response(request, path)
            except OSError:
                pass
        return Response(status=404, headers=[("content-type", "text/plain; charset=utf-8")],
                        body=b"404 Not Found\n")
