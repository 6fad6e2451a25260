"""Noise observed during a measured window: the machine's steal time and the CPU used by anything
other than the server under test and the harness (its generators and probes).

A shared VM lends its cores to neighbours (steal time: the hypervisor ran someone else while this
guest wanted to run) and runs its own daemons; either slows a run without the server or the model
being at fault. The window's whole-machine CPU comes from the kernel's /proc/stat (read through
``psutil.cpu_times``; proc(5): ``steal``, ``user``, ``system``, ...), the harness's own from
``getrusage`` (this process and the generators it waited for), the server's from its process tree.
What is left is foreign. A window over :data:`STEAL_LIMIT` or :data:`FOREIGN_LIMIT` is *noisy*: the
experiments measure it again (at most :data:`RERUNS` times) and the row keeps the last reading.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import psutil

__all__ = ["STEAL_LIMIT", "FOREIGN_LIMIT", "RERUNS", "Reading", "Window"]

#: steal time above this share of the machine's CPU time (%) makes a window noisy
STEAL_LIMIT = 5.0
#: CPU used outside the server and the harness above this (cores) makes a window noisy
FOREIGN_LIMIT = 0.10
#: how many times a noisy measurement is run again
RERUNS = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class Reading:
    """One window's noise: ``steal_pct`` (% of the machine's CPU time stolen), ``foreign_cores``
    (CPU seconds used outside the server and the harness, per second of the window: cores),
    ``noisy`` (over either limit), ``reruns`` (how many noisy windows came before this one)."""

    steal_pct: float
    foreign_cores: float
    noisy: bool
    reruns: int = 0


def _machine() -> tuple[float, float, float]:
    """(CPU seconds the machine's processes used, all CPU seconds, stolen CPU seconds): all cores,
    since boot. Interrupt and softirq time are in the total but not in the processes' share: the
    loopback traffic of the server and the generator is mostly softirq work, theirs, not foreign."""
    t = psutil.cpu_times()
    used = t.user + t.nice + t.system
    irq = getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    steal = getattr(t, "steal", 0.0)
    total = used + irq + t.idle + getattr(t, "iowait", 0.0) + steal
    return used, total, steal


def _harness() -> float:
    """CPU seconds of this process and of the children it has waited for (the generators)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Window:
    """Measure one window's noise: ``w = Window()`` at its start, ``w.close(server_cpu_s)`` at its
    end returns the :class:`Reading`. The server is not a waited-for child while it runs, so its
    CPU (``server_cpu_s``, from its process tree) is not counted twice."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = _machine()
        self._harness0 = _harness()

    def close(self, server_cpu_s: float | None, reruns: int = 0) -> Reading:
        """The reading from the start to now; ``server_cpu_s``: the server tree's CPU in the window."""
        busy1, total1, steal1 = _machine()
        busy0, total0, steal0 = self._machine0
        wall = max(1e-9, time.monotonic() - self._t0)
        steal_pct = 100.0 * (steal1 - steal0) / (total1 - total0) if total1 > total0 else 0.0
        foreign = (busy1 - busy0) - (_harness() - self._harness0) - (server_cpu_s or 0.0)
        foreign_cores = max(0.0, foreign / wall)
        return Reading(steal_pct=round(steal_pct, 2), foreign_cores=round(foreign_cores, 3),
                       noisy=steal_pct > STEAL_LIMIT or foreign_cores > FOREIGN_LIMIT, reruns=reruns)
