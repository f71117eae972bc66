"""Process-local LRU + TTL cache.

Every method body runs without an ``await`` in the middle, so under asyncio no two calls
interleave and no lock is needed; it is *not* thread-safe (use one per event loop).
Values are deep-copied in and out so a reader mutating a cached dict cannot corrupt it, unless
``copies=False``: the query runtime's LRU holds documents it never mutates, and a copy per hit
would cost more than the rest of a cached GET. :meth:`peek` is the synchronous lookup its
cache-first route needs (no coroutine, no copy).
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tandem.cache.base import CacheStats, event_key


class InMemoryCache:
    def __init__(
        self,
        max_size: int = 1024,
        ttl: float | None = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        copies: bool = True,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.ttl = ttl
        self.stats = CacheStats()
        self._clock = clock
        self._copy: Callable[[Any], Any] = copy.deepcopy if copies else _same
        self._entries: OrderedDict[str, tuple[float | None, Any]] = OrderedDict()

    async def get(self, key: str) -> Any | None:
        value = self.peek(key)
        return self._copy(value) if value is not None else None

    def peek(self, key: str) -> Any | None:
        """The stored value itself (never copied), counted like :meth:`get`."""
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        expires_at, value = entry
        if expires_at is not None and self._clock() >= expires_at:
            del self._entries[key]
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return value

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        lifetime = ttl if ttl is not None else self.ttl
        expires_at = self._clock() + lifetime if lifetime is not None else None
        self._entries[key] = (expires_at, self._copy(value))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self.forget(key)

    def forget(self, key: str) -> None:
        """:meth:`delete` for synchronous callers (a change-notice listener)."""
        self._entries.pop(key, None)

    def forget_all(self) -> None:
        self._entries.clear()

    async def invalidate(self, key: str) -> None:
        await self.delete(key)

    async def invalidate_by_event(self, event: Any) -> None:
        key = event_key(event)
        if key is not None:
            await self.delete(key)

    async def clear(self) -> None:
        self.forget_all()

    def __len__(self) -> int:
        return len(self._entries)


def _same(value: Any) -> Any:
    return value
