"""A locust user for the lab over HTTP/1.1 (locust's FastHttpUser, geventhttpclient underneath).

Usage::

    locust -f loadtest/h1user.py                      # web UI on http://localhost:8089
    locust -f loadtest/h1user.py --headless -u 64 -r 64 -t 30s --workload io
    locust -f loadtest/h1user.py --host http://127.0.0.1:8081 --workload mixed --think-ms 500 --csv results/run

Options added to locust's own (also in the web UI), from ``loadtest/workloads.py``:
  --workload  static | plaintext | echo | io | cpu | stream | mixed (default: mixed)
              static = ``/`` and the static files it links; mixed = static plus ``/plaintext``;
              io = ``/io?ms=100``; cpu = ``/cpu`` (the app's default n); stream = ``/stream``.
  --think-ms  a constant pause between one user's requests, in ms (default 0: closed loop,
              no think time).
  --warmup-s  reset the statistics this long after spawning completes (default 0).

A response is a success when its status is 2xx or 304; anything else (and any connection error)
is a failure. Requests are named by route (``/io``, ``/echo/{text}``, ``/static/{path}``) so the
statistics group by route, not by URL. Remember (DESIGN.md, "Measuring honestly"): a saturated
generator measures itself; watch locust's CPU warnings, or use ``python -m loadtest sweep``, which
records the generator's CPU.
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/h1user.py``: make ``loadtest`` importable
    sys.path.insert(0, _ROOT)

from locust import FastHttpUser, task  # noqa: E402

import loadtest.locusthooks  # noqa: E402,F401  (--workload, --think-ms, --warmup-s, --measure-s)
from loadtest.workloads import (FALLBACK_STATIC, WORKLOADS, Workload, static_links, think_seconds,  # noqa: E402
                                workload_name)

__all__ = ["LabUser", "WORKLOADS", "FALLBACK_STATIC", "static_links"]


class LabUser(FastHttpUser):
    """One simulated client: keep-alive connection, closed loop, the workload chosen on the command
    line (``--workload``), ``--think-ms`` between requests."""

    host = "http://127.0.0.1:8080"

    def wait_time(self) -> float:  # locust calls it between tasks; constant(think_ms / 1000)
        return think_seconds(self.environment)

    def on_start(self) -> None:
        self.workload = Workload(workload_name(self.environment))
        if self.workload.needs_index:  # as a browser would: the page, then what it links
            with self.client.get("/", name="/", catch_response=True) as resp:
                self._check(resp)
                if resp.status_code == 200 and resp.text:
                    self.workload.set_index(resp.text)

    @property
    def static(self) -> list[str]:
        """The static files this user requests (from the index page's links)."""
        return self.workload.static

    def _check(self, resp) -> None:
        if 200 <= resp.status_code < 300 or resp.status_code == 304:
            resp.success()
        elif resp.status_code == 0:
            resp.failure(f"connection error: {resp.error!r}")
        else:
            resp.failure(f"HTTP {resp.status_code}")

    @task
    def request(self) -> None:
        path, name = self.workload.next()
        with self.client.get(path, name=name, catch_response=True) as resp:
            self._check(resp)
