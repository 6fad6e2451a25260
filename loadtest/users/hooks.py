"""Locust hooks shared by the lab's users: custom arguments and the measured window.

Imported by ``h1user.py``, ``h2user.py`` and ``httpxuser.py`` (never by the sweep: importing locust
monkey-patches the process with gevent). Registers:

- ``--workload`` (``loadtest/users/workloads.py``), ``--think-ms`` (also in the web UI);
- ``--rate``, ``--arrival``, ``--h1-connections`` (open loop) and the HdrHistogram of every response
  time, merged across locust's processes and written next to ``--csv``'s files
  (``loadtest/users/openloop.py``);
- ``--warmup-s S``: S seconds after spawning completes, reset the statistics (locust's CSVs then cover
  only the measured window), and ``--measure-s M`` (headless): quit M seconds after that, as
  ``--run-time`` would. The window's edges are printed on stderr as ``lab-locust: measuring`` and
  ``lab-locust: stopped`` (by the master in distributed runs), which ``loadtest/harness/measure.py`` reads.
"""

from __future__ import annotations

import sys
import time

import gevent
import locust.stats
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtest.users import openloop
from loadtest.users.openloop import RECORDER
from loadtest.users.workloads import MARK_MEASURING, MARK_STOPPED, WORKLOADS, option

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
    openloop.add_arguments(parser)


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
            RECORDER.reset()
            RECORDER.window_start = time.time()
            if isinstance(env.runner, MasterRunner):  # the master: the workers forget their warm-up too
                env.runner.send_message("lab_openloop_reset")
        print(MARK_MEASURING, file=sys.stderr, flush=True)
        if measure > 0 and headless:  # as locust's own --run-time does
            gevent.spawn_later(measure, env.runner.quit)

    if warmup > 0:
        gevent.spawn_later(warmup, measuring)
    else:
        measuring()


_ENV: dict = {}

# locust rewrites its --csv files once per CSV_STATS_INTERVAL_SEC (default 1 s) and never after the
# run ends, so its _stats.csv missed up to the last second of requests (157 of 1558 in one 8 s run
# here). Every 0.2 s instead, and the stop waits for one more write (``_on_test_stop``); in a
# distributed run the master's quit waits 0.5 s for the workers' final reports, and the writer
# runs in that time.
locust.stats.CSV_STATS_INTERVAL_SEC = 0.2


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    _ENV["env"] = environment
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("lab_openloop_reset", _on_reset_message)


def _on_reset_message(environment, msg, **_kw) -> None:
    """A worker, told by the master that the warm-up is over: forget what it has not reported
    yet, in locust's statistics (the master's reset does not reach them) and in the histogram."""
    environment.runner.stats.reset_all()
    RECORDER.reset()


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    _ENV["armed"] = False
    RECORDER.reset()
    RECORDER.window_start, RECORDER.window_end = time.time(), None


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        RECORDER.window_end = time.time()
        print(MARK_STOPPED, file=sys.stderr, flush=True)
        # let locust's CSV writer see the final figures (not on a master: that would delay the
        # workers' stop, and its quit waits for their final reports anyway)
        if option(environment, "csv_prefix", None) and not isinstance(environment.runner, MasterRunner):
            gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.1)


# -- exact percentiles: every response time into the HdrHistogram, merged on the master ------------

@events.request.add_listener
def _on_request(response_time: float, **_kw) -> None:
    RECORDER.record(response_time)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict) -> None:
    data["lab_openloop"] = RECORDER.delta()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict) -> None:
    RECORDER.merge(data.get("lab_openloop"))


@events.quit.add_listener
def _on_quit(exit_code: int, **_kw) -> None:
    env = _ENV.get("env")
    if env is None or isinstance(env.runner, WorkerRunner):
        return
    prefix = option(env, "csv_prefix", None)
    if prefix:
        summary = openloop.write_outputs(prefix, RECORDER, float(option(env, "rate", 0.0) or 0.0),
                                         str(option(env, "arrival", "fixed")))
        print(f"lab-locust: latency {summary}", file=sys.stderr, flush=True)
