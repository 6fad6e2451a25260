"""Load generation for the concurrency lab, from outside the server, as a user would.

- ``h1user.py``: a locust ``FastHttpUser`` with the lab's workloads (``--workload``, ``--think-ms``).
- ``bench.py``: ``python -m loadtest.bench h1|h2``: wrk / h2load against every engine and the peers
  (uvicorn, gunicorn, hypercorn), server and generator pinned to different cores.
- ``servers.py``: start a server pinned to a core, poll its port, stop its process group;
  ``tools.py``: run wrk / h2load and parse their reports.
- ``peers.py``: the tiny WSGI app gunicorn serves as a peer.
- ``bench_parser.py``: a socket-free micro-benchmark of the HTTP/1.1 protocol object.
"""

__all__: list[str] = []
