"""Locust hooks shared by the lab's users: custom arguments and the measured window.

Imported by ``h1user.py``, ``h2user.py`` and ``httpxuser.py`` (never by the sweep: importing locust
monkey-patches the process with gevent). Registers:

- ``--workload`` (``loadtest/workloads.py``), ``--think-ms`` (also in the web UI);
- ``--warmup-s S``: S seconds after spawning completes, reset the statistics (locust's CSVs then cover
  only the measured window), and ``--measure-s M`` (headless): quit M seconds after that, as
  ``--run-time`` would. The window's edges are printed on stderr as ``lab-locust: measuring`` and
  ``lab-locust: stopped`` (by the master in distributed runs), which ``loadtest/measure.py`` reads.
"""

from __future__ import annotations

import sys

import gevent
from locust import events
from locust.runners import WorkerRunner

from .workloads import MARK_MEASURING, MARK_STOPPED, WORKLOADS, option

__all__ = ["add_arguments"]


def add_arguments(parser) -> None:
    """Add ``--workload``, ``--think-ms``, ``--warmup-s`` and ``--measure-s`` to locust's argument parser
    (a listener of ``events.init_command_line_parser``; ``include_in_web_ui`` needs the parser itself,
    not an argument group)."""
    parser.add_argument("--workload", choices=WORKLOADS, default="mixed", include_in_web_ui=True,
                       help="what to request (default: mixed = /, /plaintext and static files)")
    parser.add_argument("--think-ms", type=float, default=0.0, include_in_web_ui=True,
                       help="constant think time between a user's requests, ms (default: 0)")
    parser.add_argument("--warmup-s", type=float, default=0.0, include_in_web_ui=False,
                       help="reset the statistics this many s after spawning completes (default: 0)")
    parser.add_argument("--measure-s", type=float, default=0.0, include_in_web_ui=False,
                       help="headless: quit this many s after the warm-up (default: 0 = use -t only)")


events.init_command_line_parser.add_listener(add_arguments)


# -- warm-up: reset the statistics once spawning is over and the warm-up has passed ----------------

@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **_kw) -> None:
    env = _ENV.get("env")
    if env is None or isinstance(env.runner, WorkerRunner) or _ENV.get("armed"):
        return
    _ENV["armed"] = True
    warmup = float(option(env, "warmup_s", 0.0) or 0.0)
    measure = float(option(env, "measure_s", 0.0) or 0.0)
    headless = bool(option(env, "headless", False))

    def measuring() -> None:
        if warmup > 0:
            env.runner.stats.reset_all()
        print(MARK_MEASURING, file=sys.stderr, flush=True)
        if measure > 0 and headless:  # as locust's own --run-time does
            gevent.spawn_later(measure, env.runner.quit)

    if warmup > 0:
        gevent.spawn_later(warmup, measuring)
    else:
        measuring()


_ENV: dict = {}


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    _ENV["env"] = environment


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    _ENV["armed"] = False


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        print(MARK_STOPPED, file=sys.stderr, flush=True)
