"""A locust user on httpx with ``http2=True``: the yardstick ``python -m loadtest h2user-bench``
compares ``h2user.py`` with (the issue asks for at least 3x its requests/s on one core).

Usage::

    locust -f loadtest/httpxuser.py --headless -u 10 -r 10 -t 10s --workload plaintext

Each user owns one ``httpx.Client(http2=True)`` (one connection; h2c with prior knowledge for
``http://``, TLS + ALPN for ``https://``, verification off), requests one at a time, and fires
locust's ``request`` event like the other users (response time in ms, body length; a status other
than 2xx/304 or an exception is a failure). Under locust, gevent has patched the sockets httpx's sync
transport uses, so users run concurrently.
"""

from __future__ import annotations

import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/httpxuser.py``
    sys.path.insert(0, _ROOT)

if "httpcore" not in sys.modules and "trio" not in sys.modules:
    # httpcore imports trio when it is installed, and trio needs select.epoll, which gevent's patched
    # select lacks: hide trio while httpcore loads (the sync transport never uses it).
    sys.modules["trio"] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401
    finally:
        del sys.modules["trio"]

import httpx  # noqa: E402
from locust import User, task  # noqa: E402

import loadtest.users.hooks  # noqa: E402,F401  (--workload, --think-ms, --warmup-s, --measure-s)
from loadtest.users.workloads import Workload, is_success, think_seconds, workload_name  # noqa: E402

__all__ = ["HttpxH2User"]


class HttpxH2User(User):
    """One simulated client on ``httpx.Client(http2=True)``: the same workloads as ``H2User``."""

    host = "http://127.0.0.1:8080"

    def wait_time(self) -> float:
        return think_seconds(self.environment)

    def on_start(self) -> None:
        # HTTP/1.1 off: h2c with prior knowledge for http://, ALPN h2 only for https://
        self.client = httpx.Client(base_url=self.host, http1=False, http2=True, verify=False, timeout=30.0,
                                   headers={"user-agent": "lab-httpxuser/1"})
        self.workload = Workload(workload_name(self.environment))
        if self.workload.needs_index:
            body = self._get("/", "/")
            if body:
                self.workload.set_index(body.decode("utf-8", "replace"))

    def on_stop(self) -> None:
        self.client.close()

    def _get(self, path: str, name: str) -> bytes | None:
        t0 = time.perf_counter()
        body = None
        try:
            resp = self.client.get(path)
            body = resp.content
            exc = None if is_success(resp.status_code) else RuntimeError(f"HTTP {resp.status_code}")
        except httpx.HTTPError as e:
            exc = e
        self.environment.events.request.fire(request_type="GET", name=name,
                                             response_time=(time.perf_counter() - t0) * 1000.0,
                                             response_length=len(body or b""), response=None, context={},
                                             exception=exc, url=path)
        return body if exc is None else None

    @task
    def request(self) -> None:
        path, name = self.workload.next()
        self._get(path, name)
