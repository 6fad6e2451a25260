"""What a row of results was measured on: the machine, the code and the tools."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time

from loadtest.harness.servers import ROOT

__all__ = ["machine_info"]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict:
    """CPU model, core count, kernel, Python, git revision (``-dirty`` with a change to a tracked file
    or an untracked file outside results/, where a run writes its own output), tools."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    rev = _git("rev-parse", "--short", "HEAD") or "unknown"
    untracked = [f for f in _git("ls-files", "--others", "--exclude-standard").splitlines()
                 if not f.startswith("results/")]  # a run's own output (its log, its CSVs) is not code
    if _git("status", "--porcelain", "--untracked-files=no") or untracked:
        rev += "-dirty"

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "missing"
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]

    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": f"{platform.python_implementation()} {platform.python_version()}", "git": rev,
            "wrk": version(["wrk", "-v"]), "h2load": version(["h2load", "--version"]),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}
