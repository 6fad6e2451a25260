"""A locust user for the lab over HTTP/1.1 (locust's FastHttpUser, geventhttpclient underneath).

Usage::

    locust -f loadtest/h1user.py --headless -u 64 -r 64 -t 30s --workload io
    locust -f loadtest/h1user.py --host http://127.0.0.1:8081 --workload mixed --think-ms 500 --csv results/run

Options added to locust's own (also in the web UI):
  --workload  static | plaintext | echo | io | cpu | stream | mixed (default: mixed)
              static = ``/`` and the static files it links; mixed = static plus ``/plaintext``;
              io = ``/io?ms=100``; cpu = ``/cpu`` (the app's default n); stream = ``/stream``.
  --think-ms  a constant pause between one user's requests, in ms (default 0: closed loop,
              no think time).

A response is a success when its status is 2xx or 304; anything else (and any connection error)
is a failure. Requests are named by route (``/io``, ``/echo/{text}``, ``/static/{path}``) so the
statistics group by route, not by URL. Remember (DESIGN.md, "Measuring honestly"): a saturated
generator measures itself; watch locust's CPU warnings, or use ``python -m loadtest.bench``.
"""

from __future__ import annotations

import random
import re

from locust import FastHttpUser, events, task

__all__ = ["LabUser", "WORKLOADS", "FALLBACK_STATIC", "static_links"]

WORKLOADS = ("static", "plaintext", "echo", "io", "cpu", "stream", "mixed")
FALLBACK_STATIC = ("/static/style.css",)
_LINK = re.compile(r"""(?:href|src)\s*=\s*["'](/static/[^"'#?\s]+)""", re.IGNORECASE)
_WORDS = ("hello", "lab", "threads", "selectors", "asyncio", "processes", "caf%C3%A9")


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument("--workload", choices=WORKLOADS, default="mixed", include_in_web_ui=True,
                        help="what to request (default: mixed = /, /plaintext and static files)")
    parser.add_argument("--think-ms", type=float, default=0.0, include_in_web_ui=True,
                        help="constant think time between a user's requests, ms (default: 0)")


def static_links(html: str) -> list[str]:
    """The distinct ``/static/...`` paths an HTML page links to (href / src), in order."""
    return list(dict.fromkeys(_LINK.findall(html)))


def _ok(status: int) -> bool:
    return 200 <= status < 300 or status == 304


class LabUser(FastHttpUser):
    """One simulated client: keep-alive connection, closed loop, the workload chosen on the command
    line (``--workload``), ``--think-ms`` between requests."""

    host = "http://127.0.0.1:8080"

    def wait_time(self) -> float:  # locust calls it between tasks; constant(think_ms / 1000)
        options = self.environment.parsed_options
        return max(0.0, getattr(options, "think_ms", 0.0) or 0.0) / 1000.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.workload = getattr(options, "workload", "mixed") or "mixed"
        self.static: list[str] = list(FALLBACK_STATIC)
        if self.workload in ("static", "mixed"):  # as a browser would: the page, then what it links
            with self.client.get("/", name="/", catch_response=True) as resp:
                self._check(resp)
                if resp.status_code == 200 and resp.text:
                    self.static = static_links(resp.text) or self.static

    def _check(self, resp) -> None:
        if _ok(resp.status_code):
            resp.success()
        elif resp.status_code == 0:
            resp.failure(f"connection error: {resp.error!r}")
        else:
            resp.failure(f"HTTP {resp.status_code}")

    def _get(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as resp:
            self._check(resp)

    @task
    def request(self) -> None:
        w = self.workload
        if w == "plaintext":
            self._get("/plaintext", "/plaintext")
        elif w == "echo":
            self._get(f"/echo/{random.choice(_WORDS)}", "/echo/{text}")
        elif w == "io":
            self._get("/io?ms=100", "/io")
        elif w == "cpu":
            self._get("/cpu", "/cpu")
        elif w == "stream":
            self._get("/stream", "/stream")
        else:
            choices = ["/", *self.static] if w == "static" else ["/", "/plaintext", *self.static]
            path = random.choice(choices)
            self._get(path, "/static/{path}" if path.startswith("/static/") else path)
