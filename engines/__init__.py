"""The four engines and what the server needs of one.

:data:`ENGINES` names them in the lab's order; :func:`engine_class` imports one by name (lazily:
the asyncio engine's modules are never loaded by a threadpool server). Every engine class takes
``(app, config, listeners)`` and satisfies :class:`Engine`; engines/lifecycle.py holds what they
share, each engine file only its concurrency model.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

__all__ = ["ENGINES", "Engine", "engine_class"]

#: engine name -> (module, class)
REGISTRY: dict[str, tuple[str, str]] = {
    "threadpool": ("engines.threadpool", "ThreadPoolEngine"),
    "processpool": ("engines.processpool", "ProcessPoolEngine"),
    "selectors": ("engines.selectorsloop", "SelectorsEngine"),
    "asyncio": ("engines.asyncioloop", "AsyncioEngine"),
}
#: the engine names, in the lab's order (blocking models first, then the event loops)
ENGINES: tuple[str, ...] = tuple(REGISTRY)


class Engine(Protocol):
    """What ``engines/server.py`` types against: build with ``(app, config, listeners)``, say in
    a few words what runs (the start-up line), then serve until SIGINT/SIGTERM and drain."""

    name: str

    def __init__(self, app: Any, config: Any, listeners: list[Any]) -> None:
        """``config``: an ``engines.config.ServerConfig``; ``listeners``: ``engines.listeners.Listener``s."""

    def describe(self) -> str:
        """A few words for the start-up line (``"32 worker threads, queue 128"``)."""

    def serve(self) -> None:
        """Serve until SIGINT/SIGTERM, drain for ``--drain-timeout`` s, then return."""


def engine_class(name: str) -> type[Engine]:
    """The engine class for ``name`` (one of :data:`ENGINES`).

    Raises:
        KeyError: unknown engine name.
    """
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)
