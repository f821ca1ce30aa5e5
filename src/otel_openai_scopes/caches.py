"""The two bounded containers of the call path: a memo and a cap on distinct values.

:class:`BoundedCache` is a dict (so a hit is the C ``dict.get``, nothing more) whose :meth:`~BoundedCache.put`
keeps it within a number of entries and an approximate number of bytes: when either would be passed it
is emptied. Every entry is cheap to recompute and the same few keys repeat call after call, so dropping
all at once is simpler and cheaper than LRU bookkeeping on every hit.

:class:`Cap` lets the first ``limit`` distinct values through and answers the overflow value after, the
way metric attribute values are kept low-cardinality.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(dict[K, V], Generic[K, V]):
    """A memo bounded in entries and bytes; read it with ``get`` (or ``in``), fill it with :meth:`put`."""

    __slots__ = ("bytes", "max_bytes", "max_entries")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        super().__init__()
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = max(1, int(max_bytes))
        self.bytes = 0

    def put(self, key: K, value: V, size: int = 0) -> V:
        """Store ``value`` (about ``size`` bytes) under ``key`` and return it; empties the cache first when
        the entry would pass a bound, and stores nothing bigger than the whole byte bound. Safe from
        threads: a racing put can only empty it early."""
        if size > self.max_bytes:
            return value
        if len(self) >= self.max_entries or self.bytes + size > self.max_bytes:
            self.clear()
            self.bytes = 0
        self[key] = value
        self.bytes += size
        return value


class Cap:
    """The first ``limit`` distinct values pass; any other gets ``overflow``. Holds at most ``limit`` values."""

    __slots__ = ("limit", "overflow", "seen")

    def __init__(self, limit: int, overflow: str) -> None:
        self.limit = max(0, int(limit))
        self.overflow = overflow
        self.seen: set[Hashable] = set()

    def admit(self, value: Hashable) -> bool:
        """Whether ``value`` may appear (it is remembered if it is new and there is room)."""
        seen = self.seen
        if value in seen:
            return True
        if len(seen) < self.limit:
            seen.add(value)
            return True
        return False

    def value(self, value: str) -> str:
        """``value`` if admitted, else the overflow value."""
        return value if self.admit(value) else self.overflow

    def __len__(self) -> int:
        return len(self.seen)
