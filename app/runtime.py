"""What this Python is and whether its GIL is on: reported by ``/_metrics``, the start-up line and
every row of the load harness.

A free-threaded build (PEP 703, ``python3.14t``: ``sysconfig`` ``Py_GIL_DISABLED``) runs threads in
parallel until an extension module that has not declared ``Py_mod_gil`` is imported: CPython then
turns the GIL back on for the whole process and says so with a ``RuntimeWarning`` naming the
module ("The global interpreter lock (GIL) has been enabled to load module 'X'...", PEP 703
"Py_mod_gil"). ``PYTHON_GIL=0`` keeps it off regardless; ``PYTHON_GIL=1`` turns it on in a
free-threaded build (how the lab isolates what the GIL does from what the build does).
"""

from __future__ import annotations

import os
import platform
import re
import sys
import sysconfig

__all__ = ["gil_enabled", "free_threaded", "build_info", "GIL_WARNING", "modules_that_enabled_the_gil"]

#: CPython's warning when an import turns the GIL back on (Python/import.c); group 1: the module
GIL_WARNING = re.compile(r"GIL\) has been enabled to load module '([^']+)'")


def gil_enabled() -> bool:
    """Whether the GIL is on now (``sys._is_gil_enabled()``; always True before 3.13)."""
    return bool(getattr(sys, "_is_gil_enabled", lambda: True)())


def free_threaded() -> bool:
    """Whether this is a free-threaded build (``Py_GIL_DISABLED``), whatever the GIL's state now."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def build_info() -> dict:
    """This interpreter, JSON-ready::

        {"version": "3.14.7", "implementation": "CPython", "free_threading": True, "pgo": False,
         "lto": False, "gil": "disabled", "PYTHON_GIL": "0"}

    ``pgo``/``lto``: built with ``--enable-optimizations`` / ``--with-lto`` (``CONFIG_ARGS``);
    ``PYTHON_GIL``: the environment variable where set, else ``None``.
    """
    args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "free_threading": free_threaded(), "pgo": "--enable-optimizations" in args,
            "lto": "--with-lto" in args, "gil": "enabled" if gil_enabled() else "disabled",
            "PYTHON_GIL": os.environ.get("PYTHON_GIL")}


def modules_that_enabled_the_gil(messages: list[str]) -> list[str]:
    """The modules named by CPython's "GIL has been enabled" warnings among ``messages``
    (warning texts), in order, without repeats."""
    seen: list[str] = []
    for text in messages:
        m = GIL_WARNING.search(text)
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen
