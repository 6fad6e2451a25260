"""The one cache type of the protocol package.

Every cache here remembers the result of a pure function of its key (a parsed head, an HPACK block,
a validation): a hit skips the work, a miss does it. :class:`BoundedCache` holds at most ``size``
entries and is emptied when full (no per-hit bookkeeping, as an LRU would need; a working set
under ``size`` stays hot, a larger one is recomputed). Optionally keys longer than ``max_key``
are never kept, which bounds the memory of text keys.

Where each cache lives: per connection (HTTP/2's decoded and encoded blocks and validated heads,
``h2_core``), or process-wide and documented as such (HTTP/1.x heads and field sections, one cache
per set of limits in ``h1_parse``; response heads in ``http1``; valid field names in
``h1_writers``): each bounded, so memory stays fixed whatever the clients send.
"""

from __future__ import annotations

from typing import Any, Hashable

__all__ = ["BoundedCache"]


class BoundedCache:
    """At most ``size`` entries, emptied when full. Look up in ``data``, a plain dict
    (``cache.data.get(key)``: CPython's specialized call of a dict method; a ``dict`` subclass, or a
    method of this class, costs a request about 1 % more of the shared code's instructions); store
    with :meth:`remember`; ``key in cache``, ``len(cache)``, :meth:`clear`.

    Shared by threads (threadpool's pool, thread workers; with or without a GIL) without a lock:
    each dict operation is atomic (the GIL, or the dict's own lock in a free-threaded build, PEP
    703), entries are computed from their key alone (two threads that miss together store equal
    values), and the only race, between :meth:`remember`'s size check and its store, lets the
    cache pass ``size`` by at most one entry per thread until the next clear.

    Args:
        size: most entries (>= 1). max_key: longest key kept (``len(key)``), ``None`` for any.
    """

    __slots__ = ("size", "max_key", "data")

    def __init__(self, size: int, max_key: int | None = None) -> None:
        self.size = size
        self.max_key = max_key
        self.data: dict = {}

    def clear(self) -> None:
        """Forget every entry."""
        self.data.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def remember(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (emptying a full cache first); a key longer than
        ``max_key`` is not kept."""
        if self.max_key is not None and len(key) > self.max_key:  # type: ignore[arg-type]
            return
        data = self.data
        if len(data) >= self.size:
            data.clear()
        data[key] = value
