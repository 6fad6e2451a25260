"""A locust user for the lab over HTTP/1.1 (locust's FastHttpUser, geventhttpclient underneath).

Usage::

    locust -f loadtest/h1user.py                      # web UI on http://localhost:8089
    locust -f loadtest/h1user.py --headless -u 64 -r 64 -t 30s --workload io
    locust -f loadtest/h1user.py --host http://127.0.0.1:8081 --workload mixed --think-ms 500 --csv results/run

Options added to locust's own (also in the web UI), from ``loadtest/users/workloads.py``:
  --workload  static | plaintext | echo | io | cpu | stream | mixed (default: mixed)
              static = ``/`` and the static files it links; mixed = static plus ``/plaintext``;
              io = ``/io?ms=100``; cpu = ``/cpu`` (the app's default n); stream = ``/stream``.
  --think-ms  a constant pause between one user's requests, in ms (default 0: closed loop,
              no think time).
  --warmup-s  reset the statistics this long after spawning completes (default 0).
  --rate R    open loop (``loadtest/users/openloop.py``): R requests/s in total over the users, each
              measured from its intended send time (coordinated omission); ``--arrival poisson``
              for exponential interarrival times. Each user then keeps a pool of keep-alive
              connections that grows while every one is busy, up to ``--h1-connections``
              (default 256; the peak is reported); a request that finds them all busy waits,
              and counts as late.

A response is a success when its status is 2xx or 304; anything else (and any connection error)
is a failure. Requests are named by route (``/io``, ``/echo/{text}``, ``/static/{path}``) so the
statistics group by route, not by URL. Remember (DESIGN.md, "Measuring honestly"): a saturated
generator measures itself; watch locust's CPU warnings, or use ``python -m loadtest sweep``, which
records the generator's CPU.
"""

from __future__ import annotations

import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/h1user.py``: make ``loadtest`` importable
    sys.path.insert(0, _ROOT)

import gevent  # noqa: E402
from gevent.pool import Group  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402
from locust import FastHttpUser, task  # noqa: E402

import loadtest.users.hooks  # noqa: E402,F401  (--workload, --think-ms, --warmup-s, --measure-s, --rate)
from loadtest.users.openloop import LATE_S, RECORDER, Schedule, rate_per_user  # noqa: E402
from loadtest.users.workloads import (FALLBACK_STATIC, WORKLOADS, Workload, is_success, static_links,  # noqa: E402
                                think_seconds, workload_name)

__all__ = ["LabUser", "H1Error", "WORKLOADS", "FALLBACK_STATIC", "static_links"]


class H1Error(Exception):
    """An open-loop request that got a status other than 2xx/304."""


class LabUser(FastHttpUser):
    """One simulated client: keep-alive connection, closed loop, the workload chosen on the command
    line (``--workload``), ``--think-ms`` between requests; with ``--rate``, an open loop over a
    bounded pool of connections (module docstring)."""

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
        rate = rate_per_user(self.environment)
        if rate > 0:
            self.open_loop(rate)
            return
        path, name = self.workload.next()
        with self.client.get(path, name=name, catch_response=True) as resp:
            self._check(resp)

    # -- open loop -------------------------------------------------------------------------------

    def open_loop(self, rate: float) -> None:
        """Send on the schedule until the user is stopped: each due request in a greenlet of its
        own over a pool of at most ``--h1-connections`` keep-alive connections."""
        options = self.environment.parsed_options
        self.pool_size = max(1, int(getattr(options, "h1_connections", 256) or 256))
        poisson = getattr(options, "arrival", "fixed") == "poisson"
        self.inflight = 0
        client = HTTPClient.from_url(self.host, concurrency=self.pool_size, connection_timeout=10,
                                     network_timeout=60, headers={"User-Agent": "lab-h1user/1"})
        schedule = Schedule(rate, poisson)
        group = Group()
        try:
            while True:
                now = time.perf_counter()
                for intended in schedule.due(now):
                    if now - intended > LATE_S or self.inflight >= self.pool_size:
                        RECORDER.late += 1  # behind schedule, or waits for a connection
                    group.spawn(self.open_request, client, intended)
                gevent.sleep(max(0.0, schedule.next - time.perf_counter()))
        finally:
            group.kill(block=False)
            client.close()

    def open_request(self, client: HTTPClient, intended: float) -> None:
        """One open-loop request; its response time runs from ``intended`` (perf_counter s)."""
        self.inflight += 1
        RECORDER.peak(connections=min(self.inflight, self.pool_size))
        path, name = self.workload.next()
        length, exc = 0, None
        try:
            resp = client.get(path)
            try:
                length = len(resp.read())
                if not is_success(resp.status_code):
                    exc = H1Error(f"HTTP {resp.status_code}")
            finally:
                resp.release()
        except Exception as e:  # noqa: BLE001 - a failed request, reported as locust does
            exc = e
        finally:
            self.inflight -= 1
        self.environment.events.request.fire(
            request_type="GET", name=name, response_time=(time.perf_counter() - intended) * 1000.0,
            response_length=length, response=None, context={}, exception=exc, url=path)
