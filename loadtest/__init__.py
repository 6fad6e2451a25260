"""Load generation and measurement for the concurrency lab, from outside the server, as a user would.

The layout (``python -m loadtest COMMAND``, ``loadtest/__main__.py``, dispatches to the subpackages)::

    users/        the locust users: h1 (FastHttpUser), h2 (protocol.H2ClientConnection over gevent),
                  via_httpx (httpx http2=True, the yardstick), hooks (their locust options and the
                  measured window), openloop (--rate: a Poisson schedule, coordinated omission
                  corrected), workloads (the routes, no locust import)
    harness/      servers (start pinned, poll, stop), peers (the bare ASGI/WSGI callables and
                  hypercorn.toml), generators (run wrk / h2load, parse their reports), measure (one
                  closed-loop run: server, psutil sampler, locust / wrk / h2load)
    experiments/  one question per experiment and the law it obeys (python -m loadtest experiment);
                  base (deployments, rows), cost, latency, reuseport, sweep (the closed-loop grid)
    report/       python -m loadtest report: the verdict and "what to deploy" (verdict), charts,
                  results/REPORT.md and www/results.html
    micro/        micro-benchmarks: sessionbench (the shared session code, no sockets), userbench
                  (h2user against an httpx user)

Thin files keep the short commands: ``locust -f loadtest/h1user.py`` / ``h2user.py`` /
``httpxuser.py``, ``python -m loadtest.sessionbench``, ``python -m loadtest.bench`` (the cost preset).
"""

__all__: list[str] = []
