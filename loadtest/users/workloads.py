"""The lab's workloads, shared by every locust user (``h1user.py``, ``h2user.py``, ``httpxuser.py``).

A workload is what one simulated user asks for, request after request:

==========  ==================================================================================
static      ``/`` then, at random, ``/`` or one of the ``/static/...`` files it links (a browser)
plaintext   ``/plaintext`` (TechEmpower's plaintext test)
echo        ``/echo/{text}`` with a random word
io          ``/io?ms=100``: the handler waits 100 ms (a simulated backend; Little's law applies)
cpu         ``/cpu``: pure-Python work in the handler (about 10 ms)
stream      ``/stream``: a chunked body in pieces
mixed       ``static`` plus ``/plaintext``
cpu10       90 % ``/plaintext``, 10 % ``/cpu`` (a little CPU-heavy work among cheap requests: the
            workers experiments' mixed workload)
==========  ==================================================================================

This module does not import locust (the sweep imports it, and importing locust monkey-patches the
process with gevent); ``loadtest/users/hooks.py``, which the users import, registers locust's custom
arguments (also shown in the web UI):

- ``--workload NAME`` (default ``mixed``) and ``--think-ms MS`` (default 0: a closed loop with no
  think time);
- ``--warmup-s S`` (default 0): S seconds after every user has been spawned, the statistics are reset,
  so that locust's CSVs cover only the measured window; ``--measure-s M`` (headless, default 0):
  quit M seconds after that (``python -m loadtest sweep`` uses both; ``-t`` stays a safety limit).
  The window's edges are printed on stderr as ``lab-locust: measuring`` and ``lab-locust: stopped``.

Requests are named by route (``/io``, ``/echo/{text}``, ``/static/{path}``) so that the statistics
group by route, not by URL. A response is a success when its status is 2xx or 304.
"""

from __future__ import annotations

import random
import re

__all__ = ["WORKLOADS", "FALLBACK_STATIC", "MARK_MEASURING", "MARK_STOPPED", "Workload", "static_links",
           "is_success", "think_seconds", "workload_name", "primary_path", "option"]

WORKLOADS = ("static", "plaintext", "echo", "io", "cpu", "stream", "mixed", "cpu10")
#: the share of ``/cpu`` requests in the ``cpu10`` workload
CPU10_SHARE = 0.10
FALLBACK_STATIC = ("/static/style.css",)
MARK_MEASURING = "lab-locust: measuring"
MARK_STOPPED = "lab-locust: stopped"
_LINK = re.compile(r"""(?:href|src)\s*=\s*["'](/static/[^"'#?\s]+)""", re.IGNORECASE)
_WORDS = ("hello", "lab", "threads", "selectors", "asyncio", "processes", "caf%C3%A9")
# One fixed (path, name) per workload, for generators that repeat a single URL (wrk, h2load).
_PRIMARY = {"static": "/", "plaintext": "/plaintext", "echo": "/echo/hello", "io": "/io?ms=100",
            "cpu": "/cpu", "stream": "/stream", "mixed": "/plaintext", "cpu10": "/plaintext"}


def option(environment, name: str, default):
    """A parsed locust option of ``environment`` (``default`` when absent or None)."""
    options = getattr(environment, "parsed_options", None)
    value = getattr(options, name, None) if options is not None else None
    return default if value is None else value


def workload_name(environment) -> str:
    """The ``--workload`` of this locust run (``mixed`` when none was parsed)."""
    return option(environment, "workload", "mixed") or "mixed"


def think_seconds(environment) -> float:
    """``--think-ms`` in seconds (>= 0)."""
    return max(0.0, float(option(environment, "think_ms", 0.0) or 0.0)) / 1000.0


def static_links(html: str) -> list[str]:
    """The distinct ``/static/...`` paths an HTML page links to (href / src), in order."""
    return list(dict.fromkeys(_LINK.findall(html)))


def is_success(status: int) -> bool:
    """True for a status the lab counts as a success: 2xx or 304 (a conditional GET's answer)."""
    return 200 <= status < 300 or status == 304


def primary_path(workload: str) -> str:
    """The single URL path a one-URL generator (wrk, h2load) requests for ``workload``."""
    return _PRIMARY[workload]


class Workload:
    """One user's request sequence for a workload.

    ``needs_index`` tells the user to fetch ``/`` first (as a browser would) and hand the page to
    ``set_index``; then ``next()`` returns ``(path, name)`` pairs: the URL path with query and
    the statistics name.

    Raises:
        ValueError: an unknown workload name.
    """

    def __init__(self, name: str, rng: random.Random | None = None) -> None:
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r} (choose from {', '.join(WORKLOADS)})")
        self.name = name
        self.rng = rng or random.Random()
        self.static: list[str] = list(FALLBACK_STATIC)
        self._fixed = {"plaintext": ("/plaintext", "/plaintext"), "io": ("/io?ms=100", "/io"),
                       "cpu": ("/cpu", "/cpu"), "stream": ("/stream", "/stream")}.get(name)
        self._choices: list[str] = []
        self._update_choices()

    @property
    def needs_index(self) -> bool:
        """Whether the user should fetch ``/`` and pass it to ``set_index`` before ``next()``."""
        return self.name in ("static", "mixed")

    def set_index(self, html: str) -> None:
        """Take the static files to request from the index page's links."""
        self.static = static_links(html) or list(FALLBACK_STATIC)
        self._update_choices()

    def _update_choices(self) -> None:
        if self.name == "static":
            self._choices = ["/", *self.static]
        elif self.name == "mixed":
            self._choices = ["/", "/plaintext", *self.static]

    def next(self) -> tuple[str, str]:
        """The next request: ``(path, name)``."""
        if self._fixed is not None:
            return self._fixed
        if self.name == "echo":
            return f"/echo/{self.rng.choice(_WORDS)}", "/echo/{text}"
        if self.name == "cpu10":
            return ("/cpu", "/cpu") if self.rng.random() < CPU10_SHARE else ("/plaintext", "/plaintext")
        path = self.rng.choice(self._choices)
        return path, ("/static/{path}" if path.startswith("/static/") else path)
