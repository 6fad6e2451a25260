"""One measured run of a sweep: the server process, the psutil sampler and the load generator.

- ``Server``: a ``RunningServer`` (loadtest/harness/servers.py) as a context manager: started pinned, polled,
  stopped with SIGTERM to the process group it leads (by its pid).
- ``Sampler``: a thread that samples, every ``interval`` s and on demand (``mark``), the server's
  process tree (CPU seconds, RSS, threads, established TCP connections to its port) and the
  generator's tree (CPU seconds). CPU seconds are kept per pid, last value seen, so processes that
  exit (processpool workers replaced, locust's worker processes) still count.
- ``Load``: runs locust (with ``loadtest/users/workloads.py``'s ``--warmup-s``/``--measure-s``; the window
  is delimited by the lines locust prints), wrk (``WRK_LUA``'s ``done()`` prints the percentiles) or
  h2load (percentiles from its ``--log-file``), each built and parsed by loadtest/harness/generators.py,
  and returns a ``SweepRun``.

Units: seconds, milliseconds (``*_ms``), percent of one core (``*_pct``), MiB (``*_mb``).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

from loadtest.harness.servers import ROOT, RunningServer, ServerSpec
from loadtest.harness.generators import (WRK_LUA, BenchError, Result, h2load_command, locust_command, parse_h2load,
                                         parse_locust, parse_wrk, pinned, wrk_command)
from loadtest.users.workloads import MARK_MEASURING, MARK_STOPPED, primary_path

__all__ = ["SATURATED", "Server", "Sampler", "Load", "SweepRun", "child_env"]

SATURATED = 0.90  # share of the generator's usable cores above which a run is flagged saturated
MIB = 1024 * 1024

def child_env(data_dir: str) -> dict:
    """Environment for servers and generators: the repository importable, the app's dirs set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    env["LAB_DATA_DIR"] = data_dir
    env.setdefault("LAB_WWW", os.path.join(ROOT, "www"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """The server of one run (context manager): ``argv`` started on ``port``, pinned to ``core``."""

    def __init__(self, argv: list[str], port: int, core: list[int] | None, log_path: str, env: dict) -> None:
        self.spec = ServerSpec(name="server", kind="engine", argv=lambda _port: argv)
        self.port = port
        self.core = core[0] if core else None
        self.log_path = log_path
        self.env = env
        self.rs: RunningServer | None = None
        self.startup_s: float | None = None
        self.returncode: int | None = None

    def __enter__(self) -> Server:
        self.rs = RunningServer(self.spec, self.port, self.core, self.log_path, self.env)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll the port until it accepts. Raises: BenchError (exited, or not open in time)."""
        self.startup_s = self.rs.wait_ready(timeout)

    def __exit__(self, *exc) -> None:
        self.rs.stop()
        self.returncode = self.rs.proc.returncode


class Sampler:
    """Samples the server's and the generator's process trees in a thread (see the module docstring)."""

    def __init__(self, server: RunningServer, port: int, interval: float) -> None:
        self.server = server
        self.port = port
        self.interval = interval
        self.generator: psutil.Process | None = None
        self._gen_known: dict[int, psutil.Process] = {}
        self._cpu: dict[str, dict[int, float]] = {"server": {}, "generator": {}}
        self.samples: list[dict] = []
        self.marks: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-sampler", daemon=True)

    def start(self, generator_pid: int | None = None) -> None:
        if generator_pid is not None:
            with contextlib.suppress(psutil.Error):
                self.generator = psutil.Process(generator_pid)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample(full=True)

    def _gen_tree(self) -> list[psutil.Process]:
        if self.generator is None:
            return []
        try:
            procs = [self.generator, *self.generator.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            self._gen_known.setdefault(p.pid, p)
        return procs

    def _cpu_sum(self, which: str, procs: list[psutil.Process]) -> float:
        seen = self._cpu[which]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                seen[p.pid] = t.user + t.system
        return sum(seen.values())

    def sample(self, full: bool = False) -> dict:
        """Take one sample now: ``{t, server_cpu_s, generator_cpu_s}`` and, when ``full``, RSS (MiB),
        threads and established connections of the server's tree."""
        with self._lock:
            t = time.monotonic()
            server = self.server.tree()
            s = {"t": t, "server_cpu_s": self._cpu_sum("server", server),
                 "generator_cpu_s": self._cpu_sum("generator", self._gen_tree())}
            if full:
                rss = threads = 0
                conns: set = set()
                for p in server:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                        threads += p.num_threads()
                        for c in p.net_connections(kind="tcp"):
                            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port:
                                conns.add((c.laddr, c.raddr))
                s.update(server_rss_mb=rss / MIB, server_threads=threads, server_connections=len(conns))
                self.samples.append(s)
            return s

    def mark(self, name: str) -> None:
        """Record the CPU counters at a window edge (``start`` / ``end``)."""
        s = self.sample()
        self.marks[name] = (s["t"], s["server_cpu_s"], s["generator_cpu_s"])

    def window(self) -> dict:
        """CPU % of both trees between the marks, and RSS/threads/connections over the samples in it."""
        if "start" not in self.marks or "end" not in self.marks:
            return {"window_s": None, "server_cpu_pct": None, "generator_cpu_pct": None}
        (t0, s0, g0), (t1, s1, g1) = self.marks["start"], self.marks["end"]
        wall = max(t1 - t0, 1e-9)
        inside = [s for s in self.samples if t0 <= s["t"] <= t1] or self.samples[-1:]
        out = {"window_s": t1 - t0, "server_cpu_pct": 100.0 * (s1 - s0) / wall,
               "generator_cpu_pct": 100.0 * (g1 - g0) / wall}
        if inside:
            out.update(server_rss_mb_max=max(s["server_rss_mb"] for s in inside),
                       server_rss_mb_mean=sum(s["server_rss_mb"] for s in inside) / len(inside),
                       server_threads_max=max(s["server_threads"] for s in inside),
                       server_connections_max=max(s["server_connections"] for s in inside),
                       samples=len(inside))
        return out

    def write_csv(self, path: str) -> None:
        cols = ["t", "server_cpu_s", "server_rss_mb", "server_threads", "server_connections", "generator_cpu_s"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            t0 = self.samples[0]["t"] if self.samples else 0.0
            for s in self.samples:
                w.writerow({**s, "t": round(s["t"] - t0, 3)})


@dataclass
class SweepRun:
    """What one sweep run measured: the generator's :class:`Result` (``load``) and the sampler's
    figures over the same window; ``row()`` gives summary.csv's measured columns."""

    load: Result
    window_s: float | None = None
    server_cpu_pct: float | None = None
    server_rss_mb: float | None = None
    generator_cpu_pct: float | None = None
    notes: list[str] = field(default_factory=list)
    sample_summary: dict = field(default_factory=dict)

    def row(self) -> dict:
        """``failures``: requests without an answer plus error statuses (wrk's status errors,
        h2load's 4xx and 5xx; locust's failure count already holds them)."""
        def r(v: float | None, nd: int) -> float | None:
            return None if v is None else round(v, nd)

        ld = self.load
        return {"duration_s": r(self.window_s, 2), "requests": ld.requests or 0, "failures": ld.failures + ld.non2xx,
                "rps": r(ld.rps, 2), "p50_ms": r(ld.p50_ms, 3), "p90_ms": r(ld.p90_ms, 3),
                "p95_ms": r(ld.p95_ms, 3), "p99_ms": r(ld.p99_ms, 3), "p999_ms": r(ld.p999_ms, 3),
                "max_ms": r(ld.max_ms, 3), "server_cpu_pct": r(self.server_cpu_pct, 1),
                "server_rss_mb": r(self.server_rss_mb, 1), "generator_cpu_pct": r(self.generator_cpu_pct, 1)}


# -- the generators ----------------------------------------------------------------------------------

class Load:
    """The load generator of one run (``args.tool``) against ``url``; see the module docstring."""

    def __init__(self, spec, args, url: str, run_dir: str, cores: list[int] | None, env: dict) -> None:
        self.spec = spec
        self.args = args
        self.url = url
        self.run_dir = run_dir
        self.cores = cores
        self.env = env
        self.threads = max(1, min(args.processes or 1, spec.users))

    def capacity(self, usable_cores: int) -> float:
        """How many cores the generator can keep busy (1 for one locust process)."""
        return float(max(1, min(self.threads if self.args.tool != "locust" else (self.args.processes or 1),
                                usable_cores)))

    def command(self) -> list[str]:
        """The measuring command (pinned)."""
        s, a = self.spec, self.args
        if a.tool == "locust":
            userfile = getattr(a, "userfile", None) or ("h1user.py" if s.protocol == "h1" else "h2user.py")
            rate = a.spawn_rate or s.users
            limit = math.ceil(s.users / rate) + a.warmup + a.duration + 30  # a safety net: --measure-s quits
            extra = ["--workload", s.workload, "--warmup-s", f"{a.warmup:g}", "--measure-s", f"{a.duration:g}",
                     "--exit-code-on-error", "0"]
            if userfile == "h2user.py":
                extra += ["--h2-streams", str(s.streams)]
            return pinned(locust_command(os.path.join(ROOT, "loadtest", userfile), self.url, s.users, rate, limit,
                                         os.path.join(self.run_dir, "locust"), processes=a.processes, extra=extra),
                          self.cores)
        target = self.url + primary_path(s.workload)
        dur = max(1, math.ceil(a.duration))
        if a.tool == "wrk":
            return pinned(wrk_command(target, s.users, dur, threads=self.threads,
                                      script=os.path.join(self.run_dir, "wrk-report.lua")), self.cores)
        h1 = s.protocol == "h1"
        return pinned(h2load_command(target, s.users, streams=1 if h1 else s.streams, threads=self.threads,
                                     duration_s=dur, warmup_s=max(1, math.ceil(a.warmup)) if a.warmup > 0 else None,
                                     timeout_s=10, h1=h1, log_file=os.path.join(self.run_dir, "h2load-requests.tsv")),
                      self.cores)

    def run(self, srv: Server) -> SweepRun:
        """Warm up (wrk), run the generator with the sampler, parse; the server must survive.

        Raises:
            BenchError: the generator failed or ran past its time, or the server died.
        """
        a = self.args
        sampler = Sampler(srv.rs, srv.port, a.sample_interval)
        if a.tool == "wrk":
            with open(os.path.join(self.run_dir, "wrk-report.lua"), "w") as f:
                f.write(WRK_LUA)
            if a.warmup > 0:
                warm = [c for c in self.command() if not c.startswith("-d") and c != "--latency"]
                i = warm.index("-s")
                del warm[i:i + 2]
                warm.insert(-1, f"-d{max(1, math.ceil(a.warmup))}s")
                subprocess.run(warm, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=a.warmup + 30, check=False)
        cmd = self.command()
        log_name = {"locust": "locust.log", "wrk": "wrk.txt", "h2load": "h2load.txt"}[a.tool]
        log_path = os.path.join(self.run_dir, log_name)
        budget = a.warmup + a.duration + 60 + self.spec.users / max(a.spawn_rate or self.spec.users, 1)
        lines: list[str] = []
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        sampler.start(proc.pid)
        if a.tool == "wrk":
            sampler.mark("start")
        elif a.tool == "h2load":
            threading.Timer(max(1, math.ceil(a.warmup)) if a.warmup > 0 else 0.0,
                            lambda: sampler.mark("start")).start()

        def pump() -> None:
            with open(log_path, "w") as log:
                for line in proc.stdout:
                    if a.tool == "locust" and line.startswith(MARK_MEASURING):
                        sampler.mark("start")
                    elif a.tool == "locust" and line.startswith(MARK_STOPPED):
                        sampler.mark("end")
                    lines.append(line)
                    log.write(line)

        reader = threading.Thread(target=pump, name="lab-generator-output", daemon=True)
        reader.start()
        try:
            proc.wait(budget)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise BenchError(f"{a.tool} ran past {budget:.0f} s and was killed") from None
        except KeyboardInterrupt:
            self._kill(proc)
            raise
        finally:
            reader.join(10)
            proc.stdout.close()
            if a.tool != "locust" and "start" in sampler.marks:
                sampler.mark("end")
            sampler.stop()
            sampler.write_csv(os.path.join(self.run_dir, "samples.csv"))
        if srv.rs.proc.poll() is not None:
            raise BenchError(f"the server died during the run (status {srv.rs.proc.returncode}): {srv.rs.log_tail(3)}")
        out = "".join(lines)
        res = self._parse(out)
        win = sampler.window()
        res.window_s = res.window_s or win["window_s"]
        res.server_cpu_pct, res.generator_cpu_pct = win["server_cpu_pct"], win["generator_cpu_pct"]
        res.server_rss_mb = win.get("server_rss_mb_max")
        res.sample_summary = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in win.items()}
        if win["window_s"] is None:
            res.notes.append("window not delimited: no CPU figures")
        return res

    def _kill(self, proc: subprocess.Popen) -> None:
        with contextlib.suppress(psutil.Error):
            kids = psutil.Process(proc.pid).children(recursive=True)
            proc.kill()
            for k in kids:
                with contextlib.suppress(psutil.Error):
                    k.kill()
        proc.wait(5)

    def _parse(self, out: str) -> SweepRun:
        a = self.args
        if a.tool == "locust":
            if MARK_MEASURING not in out:
                raise BenchError(f"locust never started measuring: {out.strip()[-300:]!r}")
            return SweepRun(parse_locust(os.path.join(self.run_dir, "locust")))
        if a.tool == "wrk":
            load = parse_wrk(out)
            return SweepRun(load, window_s=load.duration_s)
        log = os.path.join(self.run_dir, "h2load-requests.tsv")
        load = parse_h2load(out, log)
        with contextlib.suppress(OSError):
            os.remove(log)  # one line per request: large; its percentiles are in the row and meta.json
        if not load.detail.get("succeeded"):
            raise BenchError(f"h2load: no request succeeded: {out.strip()[-200:]!r}")
        return SweepRun(load)
