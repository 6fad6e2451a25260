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


class BoundedCache(dict):
    """A ``dict`` of at most ``size`` entries, emptied when full. Look up with ``get`` (dict's own,
    in C); store with :meth:`remember`.

    Args:
        size: most entries (>= 1). max_key: longest key kept (``len(key)``), ``None`` for any.
    """



    def __init__(self, size: int, max_key: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.max_key = max_key

    def remember(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (emptying a full cache first); a key longer than
        ``max_key`` is not kept."""
        if self.max_key is not None and len(key) > self.max_key:  # type: ignore[arg-type]
            return
        if len(self) >= self.size:
            self.clear()
        self[key] = value
