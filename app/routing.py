"""The router: path patterns to ``async def handler(request) -> Response``, and the error policy.

Theory of operation
-------------------
``App.handle(request)`` is the one entry point the engines' glue (``engines/session.py``) and the
ASGI adapter call. It never raises an ``Exception``; every outcome is a :class:`Response`::

    method not in KNOWN_METHODS            -> 501 Not Implemented        (RFC 9110 §15.6.2)
    OPTIONS *                              -> 200, allow: <every method the app serves>
    target "*" with another method         -> 400
    literal route (dict lookup, O(1))  ┐
    parameter routes (in order added)  ┘   -> handler(request); HEAD falls back to GET (§9.3.2)
      path matches, method does not        -> 405 + allow                 (§15.5.6)
      OPTIONS on a routed path             -> 204 + allow                 (§9.3.7)
    no route, GET/HEAD and a fallback      -> fallback(request)          (the static site)
    no route                               -> 404
    handler raises HTTPError               -> its status, a short text body, its headers
    handler raises another Exception       -> 500, logged once (``logging``, "lab.app")
    BaseException (GeneratorExit, ...)     -> propagates: the glue cancels a handler by closing
                                              its coroutine, and Ctrl-C must stop the server

Virtual hosts: ``app.host("example.com")`` gives another App (same router API) chosen by the
request's Host / ``:authority`` (port stripped, case-insensitive, ``*.example.com`` for any one
label); a host without one is served by this app, the default host. A virtual host's routes are
its own (no fall-through to the default host); its metrics routes read ``example.com/path``.

The response then passes through gzip (:mod:`app.compression`); nothing else is added (the glue
writes ``date``, ``content-length`` and, for HEAD, drops the body but keeps the length).

Patterns: ``/echo/{text}`` matches one path segment and gives it percent-decoded (UTF-8, strict:
an invalid escape or invalid UTF-8 is a 400); ``/static/{path:path}`` matches the rest of the path
(possibly empty, possibly with ``/``) and gives it **still percent-encoded**, so that the handler can
tell ``%2F`` from ``/`` (the static resolver insists on that). Literal parts match the raw path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable, Iterable, Sequence

from protocol.caches import BoundedCache
from protocol.h1_parse import KNOWN_METHODS  # the methods of RFC 9110 §9 and PATCH (RFC 5789): one registry

from . import compression
from .effects import wait
from .hosts import host_of
from .messages import HTTPError, Request, Response
from .metrics import Metrics

__all__ = ["App", "Handler", "KNOWN_METHODS", "percent_decode", "error_response"]

log = logging.getLogger("lab.app")

Handler = Callable[[Request], Awaitable[Response]]

#: The methods of RFC 9110 §9 plus PATCH (RFC 5789); anything else is answered 501.

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")
_HEX = "0123456789abcdefABCDEF"


def percent_decode(text: str) -> str:
    """Decode ``%XX`` escapes of ``text`` as UTF-8 (RFC 3986 §2.1), strictly.

    Raises:
        ValueError: a ``%`` not followed by two hex digits, or bytes that are not valid UTF-8
            (overlong forms such as ``%C0%AE`` and encoded surrogates included).
    """
    if "%" not in text:
        return text
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            if i + 3 > n:
                raise ValueError("truncated percent-escape")
            hi, lo = text[i + 1], text[i + 2]
            if hi not in _HEX or lo not in _HEX:
                raise ValueError("invalid percent-escape")
            out.append(int(hi + lo, 16))
            i += 3
        else:
            out += ch.encode("utf-8")
            i += 1
    return out.decode("utf-8")  # strict: UnicodeDecodeError is a ValueError


def error_response(status: int, detail: str = "", headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A small ``text/plain`` error response: ``"404 Not Found\\n"`` (plus ``": detail"``).

    Statuses that carry no content (1xx, 204, 304) get an empty body.
    """
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    text = f"{status} {reason}".rstrip()
    if detail:
        text += f": {detail}"
    body = b"" if status < 200 or status in (204, 304) else (text + "\n").encode()
    hdrs = [("content-type", "text/plain; charset=utf-8")] if body else []
    hdrs.extend((k.lower(), v) for k, v in headers)
    return Response(status=status, headers=hdrs, body=body)


@dataclass(slots=True)
class _Route:
    pattern: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    regex: re.Pattern[str] | None = None
    decode: tuple[str, ...] = ()  # parameter names to percent-decode ({name}, not {name:path})

    def allow(self) -> str:
        methods = set(self.handlers)
        if "GET" in methods:
            methods.add("HEAD")
        methods.add("OPTIONS")
        return ", ".join(sorted(methods))


class App:
    """An application: routes, a fallback for unrouted GET/HEAD, metrics, and gzip.

    Attributes:
        metrics: the :class:`app.metrics.Metrics` the glue reports every response to.
        expect_check: ``None``, or ``f(request) -> Response | None`` (set with ``App(expect_check=f)``
            or ``@app.expect``) that the glue calls through :meth:`check_expect` before a body is
            read (RFC 9110 §10.1.1): over HTTP/1.1 when the client sent ``Expect``, over HTTP/2
            for every request whose HEADERS did not end the stream. It sees method, target and
            headers; a Response answers instead of ``100 Continue`` (e.g. 401, 413, 417) and the
            body is never read; ``None`` accepts (the default).
        name: the host name of a virtual host (:meth:`host`); ``None`` for the default host.
        fallback: ``None``, or a handler for GET/HEAD requests that no route matched (the static
            site); its metrics route is ``"/{path:path}"``.
        compress_min_size: bytes; bodies smaller than this are sent as they are (default 1024).
    """

    wait = staticmethod(wait)
    expect_check: Callable[[Request], Response | None] | None = None

    def __init__(self, *, compress_min_size: int = compression.DEFAULT_MIN_SIZE,
                 expect_check: Callable[[Request], Response | None] | None = None) -> None:
        self._literal: dict[str, _Route] = {}
        self._params: list[_Route] = []
        self.metrics = Metrics()
        self.fallback: Handler | None = None
        self.compress_min_size = compress_min_size
        self.expect_check = expect_check
        self.name: str | None = None
        self._hosts: dict[str, App] = {}        # exact names and "*.suffix" patterns
        self._host_cache = BoundedCache(256)   # raw authority -> app

    # -- virtual hosts and the expect hook ----------------------------------------------------

    def host(self, name: str) -> "App":
        """The virtual host ``name`` (created on first use): an App with its own routes, chosen
        for requests whose Host / ``:authority`` is ``name`` (RFC 9110 §7.2; port stripped,
        case-insensitive). ``"*.example.com"`` covers any one label before ``example.com``; an
        exact name wins over a wildcard. Metrics are shared with this app.

        Raises:
            ValueError: an empty name, one with a port, ``/`` or whitespace, or a wildcard other
                than a leading ``*.``.
        """
        key = name.strip().lower().rstrip(".")
        body = key[2:] if key.startswith("*.") else key
        if (not body or "*" in body or "/" in body or any(c.isspace() for c in body)
                or (":" in body and not body.startswith("["))):
            raise ValueError(f"invalid virtual host name {name!r}")
        key = key.strip("[]") if not key.startswith("*.") else key
        child = self._hosts.get(key)
        if child is None:
            child = App(compress_min_size=self.compress_min_size)
            child.metrics = self.metrics
            child.name = key
            self._hosts[key] = child
            self._host_cache.clear()
        return child

    def hosts(self) -> list[str]:
        """The virtual host names registered with :meth:`host`, sorted."""
        return sorted(self._hosts)

    def for_host(self, authority: str) -> "App":
        """The app serving ``authority`` (a Host / ``:authority`` value): the virtual host with
        that name, else one whose ``*.`` pattern covers it, else this (default) app."""
        if not self._hosts:
            return self
        app = self._host_cache.data.get(authority)
        if app is not None:
            return app
        host = host_of(authority)
        app = self._hosts.get(host)
        if app is None and "." in host:
            app = self._hosts.get("*." + host.partition(".")[2])
        if app is None:
            app = self
        self._host_cache.remember(authority, app)
        return app

    def expect(self, hook: Callable[[Request], Response | None]) -> Callable[[Request], Response | None]:
        """Decorator: ``@app.expect`` sets :attr:`expect_check` (see :meth:`check_expect`)."""
        self.expect_check = hook
        return hook

    def check_expect(self, request: Request) -> Response | None:
        """Decide, from method, target and headers only, whether to take ``request``'s body.

        Called by the glue before the body is read (RFC 9110 §10.1.1). An ``Expect`` other than
        ``100-continue`` gets 417 Expectation Failed; then the virtual host's ``expect_check``
        (else this app's) decides: a Response refuses (the glue sends it instead of 100
        Continue), ``None`` accepts. A hook raising :class:`HTTPError` refuses with its status;
        any other exception is logged and answered 500. Never raises ``Exception``.
        """
        expect = request.header("expect")
        if expect is not None and expect.strip().lower() != "100-continue":
            return error_response(417, "only 100-continue is supported")
        app = self.for_host(request.authority) if self._hosts else self
        hook = app.expect_check or self.expect_check
        if hook is None:
            return None
        try:
            return hook(request)
        except HTTPError as exc:
            return error_response(exc.status, exc.detail, exc.headers)
        except Exception:
            log.exception("expect check failed: %s %s", request.method, request.target)
            return error_response(500)

    # -- registration -----------------------------------------------------------------------

    def add_route(self, path: str, handler: Handler, methods: Iterable[str] = ("GET",)) -> None:
        """Register ``handler`` for ``path`` and ``methods`` (upper-case tokens).

        Raises:
            ValueError: ``path`` does not start with ``/``, has a malformed or repeated
                ``{parameter}``, a method is not in :data:`KNOWN_METHODS`, or the same
                (path, method) is registered twice.
        """
        if not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with '/'")
        methods = [m.upper() for m in methods]
        for m in methods:
            if m not in KNOWN_METHODS:
                raise ValueError(f"unknown method {m!r}")
        route = self._literal.get(path) or next((r for r in self._params if r.pattern == path), None)
        if route is None:
            route = self._compile(path)
            if route.regex is None:
                self._literal[path] = route
            else:
                self._params.append(route)
        for m in methods:
            if m in route.handlers:
                raise ValueError(f"{m} {path} is already routed")
            route.handlers[m] = handler

    def route(self, path: str, methods: Iterable[str] = ("GET",)) -> Callable[[Handler], Handler]:
        """Decorator: ``@app.route("/files/{name}", methods=["GET", "POST"])``."""
        def register(handler: Handler) -> Handler:
            self.add_route(path, handler, methods)
            return handler
        return register

    def get(self, path: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@app.get(path)`` (HEAD is served by the same handler)."""
        return self.route(path, ["GET"])

    def post(self, path: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@app.post(path)``."""
        return self.route(path, ["POST"])

    @staticmethod
    def _compile(path: str) -> _Route:
        names: list[str] = []
        decode: list[str] = []
        parts: list[str] = []
        pos = 0
        for m in _PARAM.finditer(path):
            parts.append(re.escape(path[pos:m.start()]))
            name, kind = m.group(1), m.group(2)
            if name in names:
                raise ValueError(f"parameter {name!r} repeated in {path!r}")
            names.append(name)
            if kind == "path":
                parts.append(f"(?P<{name}>.*)")
            else:
                parts.append(f"(?P<{name}>[^/]+)")
                decode.append(name)
            pos = m.end()
        literal_text = _PARAM.sub("", path)
        if "{" in literal_text or "}" in literal_text:
            raise ValueError(f"malformed parameter in {path!r}")
        if not names:
            return _Route(pattern=path)
        parts.append(re.escape(path[pos:]))
        return _Route(pattern=path, regex=re.compile("".join(parts) + r"\Z"), decode=tuple(decode))

    def methods(self) -> list[str]:
        """Every method some route takes (plus HEAD with GET, and OPTIONS), sorted."""
        ms = {"OPTIONS"}
        for route in (*self._literal.values(), *self._params):
            ms.update(route.handlers)
        if self.fallback is not None:
            ms.add("GET")
        if "GET" in ms:
            ms.add("HEAD")
        return sorted(ms)

    # -- dispatch ---------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Route ``request``, run its handler, gzip the result when the client allows it.

        Sets ``request.route`` (the matched pattern; ``None`` when nothing matched) and
        ``request.path_params``.

        Raises:
            BaseException: only non-``Exception`` ones (``GeneratorExit`` when the glue closes
                the coroutine, ``KeyboardInterrupt``, ``SystemExit``); everything else is a
                Response.
        """
        if self._hosts:  # for_host's cache, looked up here first (every request)
            app = self._host_cache.data.get(request.authority) or self.for_host(request.authority)
        else:
            app = self
        self.metrics.begin()
        try:
            found = app._resolve(request)
            response = found if found.__class__ is Response else await found(request)
        except HTTPError as exc:
            response = error_response(exc.status, exc.detail, exc.headers)
        except Exception:
            log.exception("handler failed: %s %s (route %s)", request.method, request.target, request.route)
            response = error_response(500)
        finally:
            self.metrics.end()
        if app is not self and request.route is not None:
            request.route = f"{app.name}{request.route}"
        if response.status == 200 and isinstance(response.body, bytes) and len(response.body) < self.compress_min_size:
            return response  # the fast path (/plaintext, /json): nothing to compress
        try:
            return compression.maybe_compress(request, response, self.compress_min_size)
        except Exception:
            log.exception("compression failed: %s %s", request.method, request.target)
            return response

    def _resolve(self, request: Request) -> Handler | Response:
        """Route ``request``: the handler to await (``request.route`` and ``path_params`` set),
        or the answer when none takes it (404, 405, 501, OPTIONS).

        Raises:
            HTTPError: 400 for invalid percent-encoding in a path parameter.
        """
        method = request.method
        if method not in KNOWN_METHODS:
            return error_response(501, f"method {method} is not implemented")
        path = request.path
        route = self._literal.get(path)
        if route is not None:
            request.route = route.pattern
            handler = route.handlers.get(method)  # _pick, inlined: every literal route's request
            if handler is None:
                handler = self._pick(route, method)
                if handler is None:
                    return self._refuse(route, method)
            return handler
        if path == "*":
            if method == "OPTIONS":
                return Response(status=200, headers=[("allow", ", ".join(self.methods()))])
            return error_response(400, "'*' is only for OPTIONS")
        allowed: list[_Route] = []
        for route in self._params:
            m = route.regex.match(path)  # type: ignore[union-attr]
            if m is None:
                continue
            handler = self._pick(route, method)
            if handler is None:
                allowed.append(route)
                continue
            params = m.groupdict()
            try:
                for name in route.decode:
                    params[name] = percent_decode(params[name])
            except ValueError:
                request.route = route.pattern
                raise HTTPError(400, "invalid percent-encoding in the path") from None
            request.route = route.pattern
            request.path_params = params
            return handler
        if allowed:
            request.route = allowed[0].pattern
            return self._refuse(allowed[0], method, allowed[1:])
        if self.fallback is not None and method in ("GET", "HEAD"):
            request.route = "/{path:path}"
            request.path_params = {"path": path[1:] if path.startswith("/") else path}
            return self.fallback
        return error_response(404)

    @staticmethod
    def _pick(route: _Route, method: str) -> Handler | None:
        handler = route.handlers.get(method)
        if handler is None and method == "HEAD":
            handler = route.handlers.get("GET")
        return handler

    @staticmethod
    def _refuse(route: _Route, method: str, more: Sequence[_Route] = ()) -> Response:
        methods = set(route.allow().split(", "))
        for other in more:
            methods.update(other.allow().split(", "))
        allow = ", ".join(sorted(methods))
        if method == "OPTIONS":
            return Response(status=204, headers=[("allow", allow)])
        return error_response(405, f"{method} is not allowed here", [("allow", allow)])
