"""What a request costs the shared machinery alone: the session, the protocol and the app, driven
in memory with no socket, no engine and no kernel (the way tests/engines/test_session.py drives a
session), in µs of CPU per request.

    python -m loadtest.sessionbench [--rounds 7] [--requests 20000] [--json FILE]
    python -m loadtest.sessionbench --instructions [--json FILE]    # needs valgrind
    python -m loadtest.sessionbench --code DIR [...]  # the app/, engines/ and protocol/ of checkout DIR

``h1``: one HTTP/1.1 keep-alive GET /plaintext per read (wrk's pattern, no pipelining).
``h2``: reads of 16 HEADERS frames (h2load ``-m 16``'s pattern, HPACK-encoded by the ``hpack``
library as a client would, its dynamic table warm) and a WINDOW_UPDATE for the bytes answered.
Every engine runs this same code between its ``recv`` and its ``send``; what the engines add
(the loop, the syscalls, the kernel's TCP) is measured by ``python -m loadtest.bench``. The
figure is the fastest round's mean (other processes only ever add time; ``median`` is printed
beside it), so compare two revisions by running each on the same machine, one after the other.

``--instructions`` counts instead of timing: the machine instructions one request executes, exact
and the same on every run of the same revision and Python (valgrind's cachegrind ``I refs`` of a
run of ``INSTRUCTION_RUNS[1]`` requests minus one of ``INSTRUCTION_RUNS[0]``, divided by the
difference, so start-up and imports cancel out). Time on a busy VM swings by ±5 % between runs;
the count does not, so a change of 1 % shows. It is not time: a cache miss costs no instruction.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import hpack
from hyperframe.frame import HeadersFrame, SettingsFrame, WindowUpdateFrame

from app import create_app
from engines.config import ServerConfig
from engines.listeners import connection_info
from engines.session import H2_PREFACE, Session

try:
    from app.effects import PARK
except ImportError:  # an older checkout measured with --code: PARK lived in engines/tasks.py
    from engines.tasks import PARK

__all__ = ["drive", "h1_cost", "h2_cost", "h2_reads", "instructions", "i_refs", "main"]

H1_REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
#: what h2load sends for ``h2load http://127.0.0.1:8080/plaintext``
H2_FIELDS = [(":method", "GET"), (":path", "/plaintext"), (":scheme", "http"), (":authority", "127.0.0.1:8080"),
             ("accept", "*/*"), ("accept-encoding", "gzip, deflate"), ("user-agent", "h2load nghttp2/1.52.0")]
STREAMS = 16
#: the two request counts whose cachegrind runs ``--instructions`` subtracts
INSTRUCTION_RUNS = (320, 1920)


def drive(session: Session, data: bytes) -> bytes:
    """Feed ``data`` to ``session``, step every task it gives to its end (a PARK is honoured, no
    other effect is waited for), return the bytes it would write."""
    pending = session.receive(data)
    while pending:
        task = pending.pop(0)
        while (effect := task.step()) is not None:
            if effect is PARK and not session.park(task):
                break
        pending.extend(session.runnable())
    return session.data_to_send()


def _session() -> Session:
    app = create_app("www", tempfile.mkdtemp(prefix="lab-sessionbench-"))
    info = connection_info(1, "sessionbench", ("127.0.0.1", 40000), ("127.0.0.1", 8080))
    return Session(app, ServerConfig(), info)


def h1_cost(requests: int) -> float:
    """Mean µs of CPU per HTTP/1.1 request over ``requests`` keep-alive exchanges."""
    s = _session()
    drive(s, H1_REQUEST)
    start = time.process_time()
    for _ in range(requests):
        drive(s, H1_REQUEST)
    return (time.process_time() - start) / requests * 1e6


def h2_reads(count: int) -> list[bytes]:
    """The client's side: the preface and SETTINGS, then ``count`` reads of ``STREAMS`` GETs
    (streams 1, 3, 5, ...) each with a WINDOW_UPDATE returning the connection window the
    previous read's 13-byte bodies used."""
    enc = hpack.Encoder()
    reads = [H2_PREFACE + SettingsFrame(0).serialize()]
    sid = 1
    for _ in range(count):
        frames = []
        for _ in range(STREAMS):
            frames.append(HeadersFrame(sid, enc.encode(H2_FIELDS), flags=["END_HEADERS", "END_STREAM"]).serialize())
            sid += 2
        frames.append(WindowUpdateFrame(0, window_increment=STREAMS * len(b"Hello, World!")).serialize())
        reads.append(b"".join(frames))
    return reads


def h2_cost(requests: int) -> float:
    """Mean µs of CPU per HTTP/2 request, in reads of ``STREAMS`` requests on one connection."""
    s = _session()
    reads = h2_reads(max(1, requests // STREAMS) + 1)
    drive(s, reads[0])
    drive(s, reads[1])
    reads = reads[1:]
    start = time.process_time()
    for data in reads[1:]:
        drive(s, data)
    return (time.process_time() - start) / ((len(reads) - 1) * STREAMS) * 1e6


def _serve(proto: str, requests: int) -> None:
    """Answer ``requests`` requests of ``proto`` (``"h1"`` or ``"h2"``) untimed: what a counted
    run executes (``--serve``). HTTP/2's requests are HPACK-encoded for the larger of the two
    counted runs every time, so that only the serving differs between them."""
    s = _session()
    if proto == "h1":
        drive(s, H1_REQUEST)
        for _ in range(requests):
            drive(s, H1_REQUEST)
    else:  # every run encodes the same reads (the client's HPACK work cancels out), drives some
        reads = h2_reads(max(requests, INSTRUCTION_RUNS[1]) // STREAMS + 1)
        for data in reads[:requests // STREAMS + 1]:
            drive(s, data)


def i_refs(cachegrind_output: str) -> int:
    """The instruction count in valgrind cachegrind's summary (``==123== I refs: 1,234,567``).

    Raises:
        ValueError: no ``I refs`` line (valgrind failed).
    """
    m = re.search(r"I\s+refs:\s+([\d,]+)", cachegrind_output)
    if m is None:
        raise ValueError("no 'I refs' line in valgrind's output:\n" + cachegrind_output[-2000:])
    return int(m.group(1).replace(",", ""))


def instructions(proto: str) -> int:
    """Machine instructions per request of ``proto`` (``"h1"`` or ``"h2"``): cachegrind runs of
    ``--serve`` with the two counts of ``INSTRUCTION_RUNS``, their difference per request.

    Raises:
        FileNotFoundError: valgrind is not installed (Debian: ``apt-get install valgrind``).
        ValueError: valgrind failed.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise FileNotFoundError("valgrind is not installed (apt-get install valgrind)")
    root = _code_dir()
    env = {**os.environ, "PYTHONPATH": root}
    counts = []
    for n in INSTRUCTION_RUNS:  # this file by path: the measured code comes from PYTHONPATH alone
        run = subprocess.run([valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                              sys.executable, os.path.abspath(__file__), "--serve", proto, str(n)],
                             capture_output=True, text=True, env=env, cwd=root)
        counts.append(i_refs(run.stderr))
    return round((counts[1] - counts[0]) / (INSTRUCTION_RUNS[1] - INSTRUCTION_RUNS[0]))


def _code_dir() -> str:
    """The checkout whose app/, engines/ and protocol/ are measured: ``--code DIR``, else this one."""
    return os.environ.get("LAB_SESSIONBENCH_CODE") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rev(directory: str) -> str:
    return subprocess.run(["git", "-C", directory, "describe", "--always", "--dirty"], capture_output=True,
                          text=True).stdout.strip()


def _rounds(cost: Callable[[int], float], rounds: int, requests: int) -> dict:
    runs = [cost(requests) for _ in range(rounds)]
    return {"us_per_req": round(min(runs), 2), "median": round(statistics.median(runs), 2),
            "rounds": [round(r, 2) for r in runs]}


def main(argv: list[str] | None = None) -> int:
    """Print (and with ``--json`` write) µs per request for h1 and h2; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m loadtest.sessionbench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="rounds per protocol (default: %(default)s)")
    p.add_argument("--requests", type=int, default=20000, help="requests per round (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--instructions", action="store_true",
                   help="count machine instructions per request with valgrind instead of timing")
    p.add_argument("--code", metavar="DIR",
                   help="measure the app/, engines/ and protocol/ of the checkout DIR (e.g. a `git worktree` of an "
                        "older revision) with this driver; the JSON's git is DIR's revision, bench_git this one's")
    p.add_argument("--serve", nargs=2, metavar=("PROTO", "N"), help=argparse.SUPPRESS)  # a counted run
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return 0
    if args.code:  # run again with DIR's code first on the path (this file by path: no loadtest import)
        i = argv.index("--code")
        rest = argv[:i] + argv[i + 2:]
        if args.json:  # the child runs in DIR: the file is named from here
            rest[rest.index("--json") + 1] = os.path.abspath(args.json)
        code = os.path.abspath(args.code)
        env = {**os.environ, "PYTHONPATH": code, "LAB_SESSIONBENCH_CODE": code,
               "LAB_SESSIONBENCH_BENCH_GIT": _rev(os.path.dirname(os.path.abspath(__file__)))}
        return subprocess.run([sys.executable, os.path.abspath(__file__), *rest], env=env, cwd=code).returncode
    rev = _rev(_code_dir())
    bench = os.environ.get("LAB_SESSIONBENCH_BENCH_GIT") or rev
    if args.instructions:
        out = {"git": rev, "bench_git": bench, "python": sys.version.split()[0], "runs": list(INSTRUCTION_RUNS),
               "h1": {"instructions_per_req": instructions("h1")}, "h2": {"instructions_per_req": instructions("h2")}}
        for proto in ("h1", "h2"):
            print(f"{proto}: {out[proto]['instructions_per_req']:,} instructions per request (valgrind), git {rev}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        return 0
    out = {"git": rev, "bench_git": bench, "python": sys.version.split()[0], "requests": args.requests,
           "h1": _rounds(h1_cost, args.rounds, args.requests), "h2": _rounds(h2_cost, args.rounds, args.requests)}
    for proto in ("h1", "h2"):
        r = out[proto]
        print(f"{proto}: {r['us_per_req']:.2f} µs CPU per request (fastest of {args.rounds} rounds; "
              f"median {r['median']:.2f}), git {rev}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
