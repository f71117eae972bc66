"""A small per-process cache in front of a shared Redis cache.

The memory level is never told about writes made by other processes, so give it a short TTL
(seconds) or invalidate it from the change feed; Redis remains the shared truth of the cache.
"""

from __future__ import annotations

from typing import Any

from tandem.cache.base import CacheStats, ReadModelCache


class MultiLevelCache:
    def __init__(self, memory: ReadModelCache, redis: ReadModelCache) -> None:
        self.memory = memory
        self.redis = redis
        self.stats = CacheStats()

    async def get(self, key: str) -> Any | None:
        value = await self.memory.get(key)
        if value is not None:
            self.stats.hits += 1
            return value
        value = await self.redis.get(key)
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        await self.memory.set(key, value)
        return value

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        await self.redis.set(key, value, ttl)
        await self.memory.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        # Outer level first: deleting memory first would let a concurrent reader refill it
        # from the still-stale Redis entry.
        await self.redis.delete(key)
        await self.memory.delete(key)

    async def invalidate(self, key: str) -> None:
        await self.delete(key)

    async def invalidate_by_event(self, event: Any) -> None:
        await self.redis.invalidate_by_event(event)
        await self.memory.invalidate_by_event(event)

    async def clear(self) -> None:
        await self.redis.clear()
        await self.memory.clear()
