"""What every experiment shares: the row schema, the configuration, the servers and wrk."""

from __future__ import annotations

import collections
import http.client
import os
import random
import time
from dataclasses import dataclass, replace
from typing import Callable

from engines import ENGINES  # the one registry (engines/__init__.py), re-exported here
from engines.supervisor import cpu_count

from loadtest.harness import interpreters, noise
from loadtest.harness.generators import Result, parse_wrk, pinned, run_tool, wrk_command
from loadtest.harness.peers import HYPERCORN_CONFIG
from loadtest.harness.servers import HOST, ROOT, RunningServer, ServerSpec

COLUMNS = ["experiment", "round", "repeat", "seed", "date", "engine", "workers", "protocol", "workload", "users", "level", "duration_s", "requests", "rps",
           "p50_ms", "p99_ms", "max_ms", "server_cpus", "server_cpu_us_per_req", "law", "expected",
           "held", "note", "steal_pct", "foreign_cores", "noisy", "git_rev", "python", "gil", "worker_kind",
           "cpu"]
#: threadpool's worker threads in these experiments (its default, 32)
THREADPOOL_WORKERS = 32


#: the models that run as hybrids (model x W processes) beside the four configurations
HYBRIDS = ("threadpool", "selectors", "asyncio")
#: the peers measured at W workers, serving loadtest/harness/peers.py's bare workload callables
PEERS_AT_W = ("uvicorn-httptools", "granian", "gunicorn-gthread", "hypercorn")
#: the module each peer is started with (``python -m MODULE``)
PEER_MODULE = {"uvicorn-httptools": "httptools", "granian": "granian", "gunicorn-gthread": "gunicorn",
               "hypercorn": "hypercorn"}
#: gunicorn gthread's threads per worker in these experiments (as threadpool's pool, 32)
GTHREAD_THREADS = 32


def server_cores() -> int:
    """The cores the server may use here: W of the hybrids (what ``--workers auto`` counts)."""
    return cpu_count()


@dataclass
class Config:
    """What an experiment needs: which engines, how long, where the server and generator run.

    ``workers``: the worker counts W of the hybrids and the peers (default: the server's cores);
    ``peers``: also measure the peers at each W (``--no-peers`` leaves them out); ``round``: the
    round being run (1-based; each round visits every configuration once, in the order
    :meth:`order` shuffles from ``seed``); ``control``: measure the A/A control, a second copy of
    :data:`CONTROL_ENGINE` under the name ``ENGINE (A/A)`` (:func:`control`)."""

    engines: tuple[str, ...]
    quick: bool
    duration: float
    results: str
    log_dir: str
    machine: dict
    workers: tuple[int, ...] = ()
    peers: bool = True
    round: int = 1
    seed: int = 0
    control: bool = True

    def __post_init__(self) -> None:
        if not self.workers:
            self.workers = (server_cores(),)

    def order(self, items: list, key: str = "") -> list:
        """``items`` in this round's order: shuffled by ``random.Random`` seeded with the run's
        ``seed``, the round and ``key`` (so a run is reproduced from its recorded seed)."""
        out = list(items)
        random.Random(f"{self.seed}:{self.round}:{key}").shuffle(out)
        return out

    def engine_names(self) -> list[str]:
        """The four configurations' names in this round's order, with the A/A control's twin
        (:func:`control`) when ``control`` is on."""
        names = list(self.engines)
        if self.control and self.engines:
            names.append(control_name(self))
        return self.order(names, "engines")


@dataclass(frozen=True)
class Deployment:
    """A model times a number of processes: what a user deploys.

    ``name`` is the row's ``engine`` column: the engine alone for the four configurations as the
    lab has always run them (processpool: its default, one process per core), ``MODEL xW`` for a
    hybrid or a peer at W workers, ``MODEL xW (interpreters)`` for W interpreter workers of one
    process (Python 3.14, ``--worker-kind interpreter``), ``MODEL xW (threads)`` for W thread
    workers of one process (``--worker-kind thread``), ``threadpool --threads T`` for one threadpool
    process of T threads. ``kind``: ``"engine"`` or ``"peer"``; ``worker_kind``: ``"process"``,
    ``"interpreter"`` or ``"thread"``."""

    name: str
    model: str
    workers: int
    kind: str = "engine"
    worker_kind: str = "process"
    #: threadpool's pool size where the row sets it (``threadpool --threads T``), else None
    threads: int | None = None

    @property
    def key(self) -> str:
        """The model and its kind of worker: what a one-worker baseline is looked up by."""
        if self.worker_kind == "process":
            return self.model
        return f"{self.model}{INTERPRETERS if self.worker_kind == 'interpreter' else THREADS}"

    @property
    def hybrid(self) -> bool:
        """A model that is one process by default, run here as W > 1 copies."""
        return self.kind == "engine" and self.model != "processpool" and self.workers > 1


def plain(engine: str) -> Deployment:
    """One of the four configurations as ``./start_server --engine ENGINE`` runs it."""
    return Deployment(engine, engine, server_cores() if engine == "processpool" else 1)


INTERPRETERS = " (interpreters)"
THREADS = " (threads)"
#: the A/A control's suffix: ``selectors (A/A)`` is selectors started again under a second name,
#: in the same rounds; its ratio to ``selectors`` must be a tie, or the harness is broken
CONTROL = " (A/A)"
#: the engine measured twice (the one with the least machinery between the request and the loop)
CONTROL_ENGINE = "selectors"


def control_name(cfg: Config) -> str:
    """The A/A twin's name in ``cfg``: ``CONTROL_ENGINE (A/A)``, or the first engine's."""
    engine = CONTROL_ENGINE if CONTROL_ENGINE in cfg.engines else cfg.engines[0]
    return engine + CONTROL


def original(name: str) -> str:
    """The configuration an A/A twin copies (``selectors`` of ``selectors (A/A)``); ``name`` else."""
    return name[:-len(CONTROL)] if name.endswith(CONTROL) else name


def control(dep: Deployment) -> Deployment:
    """The A/A twin of ``dep``: the same deployment under the name ``NAME (A/A)``."""
    return replace(dep, name=dep.name + CONTROL)


def interpreter_workers(model: str, workers: int) -> Deployment:
    """``workers`` copies of ``model`` in subinterpreters of one process."""
    return Deployment(f"{model} x{workers}{INTERPRETERS}", model, workers, "engine", "interpreter")


def thread_workers(model: str, workers: int) -> Deployment:
    """``workers`` copies of ``model`` in threads of one process (``--worker-kind thread``)."""
    return Deployment(f"{model} x{workers}{THREADS}", model, workers, "engine", "thread")


def pool_threads(threads: int) -> Deployment:
    """One threadpool process of ``threads`` threads (``--threads T``)."""
    return Deployment(f"threadpool --threads {threads}", "threadpool", 1, "engine", "process", threads)


def deployment_of(name: str) -> Deployment:
    """The :class:`Deployment` a row's ``engine`` column names: ``MODEL xW`` (a hybrid, or a
    peer at W workers), ``MODEL xW (interpreters)``, one of the four engines as the lab runs it,
    or a peer in one process; an A/A twin (``... (A/A)``) is its original under the twin's name."""
    if name.endswith(CONTROL):
        return control(deployment_of(original(name)))
    if name.startswith("threadpool --threads ") and name.rpartition(" ")[2].isdigit():
        return pool_threads(int(name.rpartition(" ")[2]))
    model, _, w = name.partition(" x")
    if w.endswith(INTERPRETERS) and w[:-len(INTERPRETERS)].isdigit():
        return interpreter_workers(model, int(w[:-len(INTERPRETERS)]))
    if w.endswith(THREADS) and w[:-len(THREADS)].isdigit():
        return thread_workers(model, int(w[:-len(THREADS)]))
    if w.isdigit():
        return Deployment(name, model, int(w), "engine" if model in ENGINES else "peer")
    return plain(name) if name in ENGINES else Deployment(name, name, 1, "peer")


def deployments(cfg: Config, *, peers: bool = True, plain_engines: bool = True) -> list[Deployment]:
    """The four configurations (``cfg.engines``), then per W of ``cfg.workers`` (W > 1) the
    hybrids among ``cfg.engines`` (processpool too when W differs from its default), the same
    hybrids as interpreter workers when the servers' Python runs them (3.14) and as thread workers
    on a free-threaded build (3.14t, its GIL on or off), then the peers at
    each W (when ``peers`` and ``cfg.peers``; a peer the servers' Python cannot start is left out);
    with ``cfg.control``, the A/A twin of :data:`CONTROL_ENGINE`. In this round's order
    (:meth:`Config.order`)."""
    out = [plain(e) for e in cfg.engines] if plain_engines else []
    if plain_engines and cfg.control and cfg.engines:
        out.append(control(plain(original(control_name(cfg)))))
    subinterpreters = interpreters.current().interpreter_workers
    free = interpreters.current().free_threaded
    for w in cfg.workers:
        for e in cfg.engines:
            if w > 1 and e in HYBRIDS or e == "processpool" and w != server_cores():
                out.append(Deployment(f"{e} x{w}", e, w))
        for e in cfg.engines:
            if w > 1 and e in HYBRIDS and subinterpreters:
                out.append(interpreter_workers(e, w))
        for e in cfg.engines:
            if w > 1 and e in HYBRIDS and free:
                out.append(thread_workers(e, w))
    if peers and cfg.peers:
        out += [Deployment(f"{p} x{w}", p, w, "peer") for w in cfg.workers for p in PEERS_AT_W
                if interpreters.current().has(PEER_MODULE[p])]
    return cfg.order(out, "deployments")


def server_env() -> dict:
    """The environment a server starts in: this one, with the lab importable (the peers import
    loadtest/harness/peers.py and app/ from any worker process they spawn)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def wait_limit(dep: Deployment) -> int | None:
    """L of Little's law for ``/io`` waits: how many one deployment holds at once (None:
    unbounded: the loops, and ASGI peers)."""
    if dep.model == "threadpool":
        return THREADPOOL_WORKERS * dep.workers
    if dep.model == "processpool":
        return dep.workers
    if dep.model == "gunicorn-gthread":
        return GTHREAD_THREADS * dep.workers
    return None


def deployment_spec(dep: Deployment, extra: tuple[str, ...] = (), asgi: str | None = None,
                    wsgi: str | None = None) -> ServerSpec:
    """How to start ``dep``: ``./start_server`` with ``--workers``/``--threads`` for an engine;
    a peer at ``--workers W`` serving loadtest/harness/peers.py's bare workload callable (or the
    ``asgi``/``wsgi`` callables given, as ``module:name``); an A/A twin as its original, under its
    own name."""
    if dep.name.endswith(CONTROL):
        return replace(deployment_spec(replace(dep, name=original(dep.name)), extra, asgi, wsgi), name=dep.name)
    if dep.kind == "engine":
        if dep == plain(dep.model):
            return _spec(dep.model, extra)
        if dep.threads is not None:
            return _spec(dep.model, ("--threads", str(dep.threads), *extra), name=dep.name, pool=False)
        threads = ("--threads", str(THREADPOOL_WORKERS)) if dep.model == "threadpool" else ()
        kind = ("--worker-kind", dep.worker_kind) if dep.worker_kind != "process" else ()
        return _spec(dep.model, ("--workers", str(dep.workers), *kind, *threads, *extra), name=dep.name, pool=False)
    py, w, host = interpreters.python(), str(dep.workers), HOST
    asgi = asgi or "loadtest.harness.peers:workload_asgi"
    wsgi = wsgi or "loadtest.harness.peers:workload_wsgi"
    argv: Callable[[int], list[str]] = {
        "uvicorn-httptools": lambda port: [py, "-m", "uvicorn", asgi, "--host", host, "--port", str(port), "--workers",
                                           w, "--http", "httptools", "--no-access-log", "--log-level", "warning",
                                           "--lifespan", "off"],
        "granian": lambda port: [py, "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port),
                                 "--workers", w, "--no-ws", "--log-level", "warning", asgi],
        "gunicorn-gthread": lambda port: [py, "-m", "gunicorn", "-k", "gthread", "--workers", w, "--threads",
                                          str(GTHREAD_THREADS), "--bind", f"{host}:{port}", "--log-level", "warning",
                                          wsgi],
        "hypercorn": lambda port: [py, "-m", "hypercorn", asgi, "--bind", f"{host}:{port}", "--workers", w,
                                   "--log-level", "warning", "--config", HYPERCORN_CONFIG],
    }[dep.model]
    return ServerSpec(name=dep.name, kind="peer", argv=argv, description=" ".join(argv(0)[1:]))


def _workers(engine: str) -> int | None:
    """The concurrency limit L of ``engine`` for waits (None: unbounded)."""
    engine = original(engine)
    if engine == "threadpool":
        return THREADPOOL_WORKERS
    if engine == "processpool":
        return server_cores()
    return None


def _spec(engine: str, extra: tuple[str, ...] = (), name: str | None = None, pool: bool = True) -> ServerSpec:
    """``./start_server --engine ENGINE`` as the experiments run it (an A/A twin's name accepted)."""
    if engine.endswith(CONTROL):
        return replace(_spec(original(engine), extra, name, pool), name=name or engine)
    workers = _workers(engine) if pool else None
    option = "--threads" if engine == "threadpool" else "--workers"  # the pool's size; processes
    args = [option, str(workers)] if workers is not None else []
    py = interpreters.python()
    return ServerSpec(name=name or engine, kind="engine", argv=lambda port: [
        py, os.path.join(ROOT, "start_server"), "--engine", engine, "--port", str(port),
        "--log-level", "WARNING", "--max-connections", "20000", *args, *extra])


def _wrk(port: int, path: str, connections: int, duration: float, cores: list[int] | None) -> Result:
    """wrk -t1 -c N against ``path``: :func:`parse_wrk`'s result, ``rps`` counting only the answers
    below 400 (:meth:`Result.only_2xx`)."""
    cmd = pinned(wrk_command(f"http://{HOST}:{port}{path}", connections, duration), cores)
    out, _, _ = run_tool(cmd, timeout=duration + 60)
    return parse_wrk(out).only_2xx()


def _row(cfg: Config, experiment: str, engine: str, workload: str, users: int, result: Result,
         server_cpu_s: float | None, server_cpus: int, law: str, expected: str, held: bool | None, note: str = "",
         protocol: str = "h1", duration: float | None = None, workers: int | None = None, level: str = "") -> dict:
    """One row of COLUMNS from a generator's (or the probe's) :class:`Result`. ``level``: the load
    point where ``users`` does not name it (latency: the offered load as a % of the ceiling)."""
    requests = result.requests or 0
    if requests and server_cpu_s is not None and server_cpu_s <= 0:
        note = "; ".join(x for x in (note, "server CPU below the kernel's 10 ms CPU clock tick: not measured") if x)
    if result.non2xx:
        note = "; ".join(x for x in (note, f"{result.non2xx} of {requests} answers were not 2xx (not counted "
                                            f"in rps; {result.detail.get('rps_all', 0):.0f} req/s with them)") if x)
    if result.failures:
        detail = result.detail.get("socket_error_detail") or ""
        note = "; ".join(x for x in (note, f"{result.failures} requests without an answer (socket errors, timeouts"
                                           f"{': ' + detail if detail else ''})") if x)
    counted = result.requests is None or result.requests > 0
    if not counted:  # a failed run is not a measurement of 0 req/s: the rate is left empty
        note = "; ".join(x for x in ("failed: no answer counted", note) if x) if not note.startswith("failed") else note
    reading = result.detail.get("noise")
    if reading is not None and reading.reruns:
        note = "; ".join(x for x in (note, f"measured again {reading.reruns}x: machine noise (steal or foreign CPU)") if x)
    if reading is not None and reading.noisy:
        note = "; ".join(x for x in (note, f"noisy window: {reading.steal_pct:.1f} % steal, "
                                           f"{reading.foreign_cores:.2f} cores of foreign CPU") if x)
    return {"experiment": experiment, "round": cfg.round, "repeat": cfg.round, "seed": cfg.seed,
            "date": time.strftime("%Y-%m-%d %H:%M"), "level": level,
            "steal_pct": None if reading is None else reading.steal_pct,
            "foreign_cores": None if reading is None else reading.foreign_cores,
            "noisy": "" if reading is None else ("yes" if reading.noisy else "no"),
            "engine": engine, "workers": workers if workers is not None else _row_workers(engine),
            "protocol": protocol, "workload": workload, "users": users,
            "duration_s": cfg.duration if duration is None else duration, "requests": requests, "rps": round(result.rps, 3 if result.rps < 100 else 1) if counted else None,
            "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "max_ms": result.max_ms,
            "server_cpus": server_cpus,
            "server_cpu_us_per_req": round(server_cpu_s / requests * 1e6, 1) if requests and server_cpu_s else None,
            "law": law, "expected": expected, "held": "" if held is None else ("yes" if held else "NO"),
            "note": note, "git_rev": cfg.machine["git"], "python": interpreters.current().label,
            "gil": interpreters.current().gil, "worker_kind": deployment_of(engine).worker_kind if " x" in engine else "process",
            "cpu": cfg.machine["cpu"]}


def _row_workers(engine: str) -> int:
    """The ``workers`` column for a row named ``engine``: W of ``MODEL xW``, processpool's
    default (the cores), else 1 (one process)."""
    model, _, w = engine.partition(" x")
    if w.isdigit():
        return int(w)
    return server_cores() if model == "processpool" else 1


def _measured(server: RunningServer, fn: Callable[[], Result]) -> tuple[Result, float]:
    """``fn()`` and the server tree's CPU seconds while it ran; the window's noise
    (:class:`loadtest.harness.noise.Reading`) in ``result.detail["noise"]``. A noisy window is
    measured again, at most ``noise.RERUNS`` times; the last measurement is returned."""
    for attempt in range(noise.RERUNS + 1):
        window = noise.Window()
        before = server.cpu_seconds()
        result = fn()
        cpu_s = server.cpu_seconds() - before
        reading = window.close(cpu_s, attempt)
        if not reading.noisy:
            break
    result.detail["noise"] = reading
    return result, cpu_s


#: seconds of load before each freshly started server is measured, not counted
WARMUP_S = 1.0


def warm_up(server: RunningServer, path: str = "/plaintext", connections: int = 8) -> None:
    """The discarded warm-up of a freshly started server: wrk on ``path`` for :data:`WARMUP_S`
    (imports, caches, the allocator and the branch predictors settle; Kalibera & Jones 2013)."""
    cmd = wrk_command(f"http://{HOST}:{server.port}{path}", connections, WARMUP_S)
    run_tool(cmd, timeout=WARMUP_S + 30)


def _probe_path(port: int, path: str, count: int, errors: list[str] | None = None) -> list[float]:
    """``count`` sequential GETs of ``path`` on one keep-alive connection: latencies (ms) of the
    answered ones. Without ``errors`` the first request that gets no answer raises (OSError,
    http.client.HTTPException); with it, each such request appends ``"ExcType: message"`` to
    ``errors`` (not a latency: a failure), the connection is opened anew, and the probe goes on."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    out = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException) as exc:
                if errors is None:
                    raise
                errors.append(failure(exc))
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                continue
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out


def failure(exc: BaseException) -> str:
    """A request without an answer as a probe's ``errors`` hold it: ``"ExcType: message"``."""
    return f"{type(exc).__name__}: {exc}"


def probe_errors(errors: list[str]) -> str:
    """``errors`` of a probe as one note: each distinct error with its count, most frequent first
    (``"3x ConnectionResetError: [Errno 104] Connection reset by peer"``); "" when none."""
    return "; ".join(f"{n}x {e}" for e, n in collections.Counter(errors).most_common())
