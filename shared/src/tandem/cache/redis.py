"""Redis-backed cache that degrades to a miss when Redis is unreachable.

A read path must not fail because its cache did: every Redis error is caught here, logged,
counted (``stats.errors`` and the ``tandem_cache_errors_total`` metric) and turned into a miss
or a skipped write. Keep the client's socket timeouts short (e.g. 0.5 s) so an outage costs
little latency.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tandem.cache.base import CacheStats, event_key

logger = logging.getLogger(__name__)

CACHE_ERRORS = Counter(
    "tandem_cache_errors_total", "Cache backend errors turned into misses", ["operation"]
)
_OUTAGE = (RedisError, OSError, TimeoutError)


class RedisCache:
    def __init__(
        self, client: Redis, prefix: str = "tandem:cache:", ttl: float | None = 60.0
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.stats = CacheStats()

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.stats.errors += 1
        CACHE_ERRORS.labels(operation=operation).inc()
        logger.warning("redis cache %s failed, degrading: %r", operation, exc)

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self.client.get(self._key(key))
        except _OUTAGE as exc:
            self._failed("get", exc)
            self.stats.misses += 1
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        lifetime = ttl if ttl is not None else self.ttl
        try:
            await self.client.set(
                self._key(key),
                orjson.dumps(value),
                px=int(lifetime * 1000) if lifetime is not None else None,
            )
        except _OUTAGE as exc:
            self._failed("set", exc)

    async def delete(self, key: str) -> None:
        try:
            await self.client.delete(self._key(key))
        except _OUTAGE as exc:
            self._failed("delete", exc)

    async def invalidate(self, key: str) -> None:
        await self.delete(key)

    async def invalidate_by_event(self, event: Any) -> None:
        key = event_key(event)
        if key is not None:
            await self.delete(key)

    async def clear(self) -> None:
        """Delete this prefix's keys (SCAN, never KEYS, so a big Redis is not blocked)."""
        try:
            batch: list[Any] = []
            async for name in self.client.scan_iter(match=f"{self.prefix}*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await self.client.delete(*batch)
                    batch.clear()
            if batch:
                await self.client.delete(*batch)
        except _OUTAGE as exc:
            self._failed("clear", exc)
