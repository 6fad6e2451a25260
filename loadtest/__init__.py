"""Load generation for the concurrency lab, from outside the server, as a user would.

- ``h1user.py``: a locust ``FastHttpUser`` with the lab's workloads (``--workload``, ``--think-ms``).
- ``h2user.py``: a locust user on ``protocol.H2ClientConnection`` over gevent sockets (``--h2-streams``);
  ``httpxuser.py``: an httpx ``http2=True`` user, the yardstick of ``python -m loadtest h2user-bench``
  (``userbench.py``); ``workloads.py``: the workloads (no locust import); ``locusthooks.py``: the users'
  locust arguments and the measured window (``--warmup-s``, ``--measure-s``).
- ``sweep.py``: ``python -m loadtest sweep``: engines x protocols x workloads x users -> results/runs/
  and results/summary.csv; ``measure.py``: one run (server, psutil sampler, locust / wrk / h2load).
- ``bench.py``: ``python -m loadtest.bench h1|h2``: wrk / h2load against every engine and the peers
  (uvicorn, gunicorn, hypercorn), server and generator pinned to different cores.
- ``servers.py``: start a server pinned to a core, poll its port, stop its process group;
  ``tools.py``: run wrk / h2load and parse their reports.
- ``peers.py``: the tiny WSGI app gunicorn serves as a peer.
- ``report.py``: ``python -m loadtest report``: charts (``charts.py``), results/REPORT.md and
  www/results.html from results/summary.csv (read and folded over repeats by ``results.py``).
"""

__all__: list[str] = []
