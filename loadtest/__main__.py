"""``python -m loadtest COMMAND [ARGS]``: the load harness's command line.

Commands:
  sweep         start each engine or peer, load it, append rows to results/summary.csv (loadtest/experiments/sweep.py)
  h2user-bench  the HTTP/2 locust user against an httpx (http2=True) locust user, on one core
                (loadtest/micro/userbench.py)
  report        charts and tables from results/summary.csv (loadtest/report/)
  bench         wrk / h2load against the engines and peers (loadtest/bench.py; also ``python -m loadtest.bench``)
  experiment    one question per experiment and the law it obeys (loadtest/experiments/)
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "main"]

COMMANDS = {
    "sweep": ("loadtest.experiments.sweep", "engines x protocols x workloads x users -> results/summary.csv"),
    "h2user-bench": ("loadtest.micro.userbench", "requests/s of loadtest/h2user.py vs an httpx http2=True user"),
    "report": ("loadtest.report", "charts and tables from results/summary.csv"),
    "bench": ("loadtest.bench", "wrk / h2load against every engine and the peers"),
    "experiment": ("loadtest.experiments", "one question per experiment, its law checked (wait, cores, interference)"),
}


def _usage() -> str:
    lines = ["usage: python -m loadtest COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<13} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "python -m loadtest COMMAND --help for a command's options"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to ``<module>.main(argv[1:])``; returns its exit status (2 for usage errors)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"python -m loadtest: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = COMMANDS[name][0]
    return int(importlib.import_module(module).main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
