"""Two cache levels in front of MongoDB, per read model: a per-process LRU, then Redis.

* The LRU (:class:`tandem.cache.InMemoryCache` holding documents without copying them) is
  invalidated by the change notices (:meth:`DocumentCache.on_notice`); its TTL is only a
  safety net for a notice lost while the subscriber was reconnecting.
* Redis holds ``ReadModelSpec.cache_key(id)`` = the document's API JSON, written by the
  projector and by this service on a miss, with a TTL. It is an optimisation: when Redis fails the breaker
  opens for ``redis_retry_s`` (one log line, one metric) and reads go straight to MongoDB.
* ``known versions``: the highest version each recent notice announced. A cached entry older
  than that is treated as a miss and never written back, so a reader of this process never
  sees a document go back in time after its notice arrived (a miss-fill racing the
  projector's write cannot leave an older entry behind).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tandem.cache.base import CacheStats, event_key
from tandem.cache.memory import InMemoryCache
from tandem.cache.redis import RedisCache
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.metrics import CACHE_LOOKUPS, REDIS_DEGRADED

logger = logging.getLogger(__name__)
Document = dict[str, Any]

_MEMORY_HIT = CACHE_LOOKUPS.labels("memory", "hit")
_MEMORY_MISS = CACHE_LOOKUPS.labels("memory", "miss")
_REDIS_HIT = CACHE_LOOKUPS.labels("redis", "hit")
_REDIS_MISS = CACHE_LOOKUPS.labels("redis", "miss")


class DocumentCache:
    """The two levels of one read model (its own LRU, its own Redis prefix, its own known
    versions): the same id in two read models never shares an entry.

    A :class:`~tandem.cache.base.ReadModelCache`, so it is the cache of the read model's
    :class:`~tandem.read_model.service.ReadModelService`; :meth:`set` refuses a document older
    than a notice already seen.
    """

    def __init__(
        self,
        memory: InMemoryCache,
        redis: RedisCache,
        *,
        redis_ttl: float,
        redis_retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.memory = memory
        self.redis = redis
        self.redis_ttl = redis_ttl
        self.redis_retry_s = redis_retry_s
        self._clock = clock
        self._redis_down_until = 0.0
        self._known: OrderedDict[str, int] = OrderedDict()
        self._known_max = max(memory.max_size * 2, 1024)
        self.stats = CacheStats()

    @property
    def redis_available(self) -> bool:
        return self._clock() >= self._redis_down_until

    def known_version(self, key: str) -> int:
        return self._known.get(key, 0)

    def memory_hit(self, key: str) -> Document | None:
        """The in-process copy, if there is one: no I/O, so the GET route can answer a plain
        read without building a query (see :mod:`tandem.runtime.query.http`). Counted like :meth:`get`;
        a miss is not counted here because the full path that follows counts it."""
        document: Document | None = self.memory.peek(key)
        if document is not None:
            _MEMORY_HIT.inc()
        return document

    async def get(self, key: str) -> Document | None:
        document: Document | None = self.memory.peek(key)
        if document is not None:
            _MEMORY_HIT.inc()
            self.stats.hits += 1
            return document
        _MEMORY_MISS.inc()
        if not self.redis_available:
            self.stats.misses += 1
            return None
        errors = self.redis.stats.errors
        cached = await self.redis.get(key)
        if self.redis.stats.errors != errors:
            self._redis_failed()
            return None
        if not isinstance(cached, dict) or int(cached.get("version", 0)) < self.known_version(key):
            _REDIS_MISS.inc()
            self.stats.misses += 1
            return None
        _REDIS_HIT.inc()
        self.stats.hits += 1
        await self.memory.set(key, cached)
        return cached

    async def set(self, key: str, document: Any, ttl: float | None = None) -> None:
        """After a MongoDB read: remember it in both levels unless a newer notice is known."""
        if int(document.get("version", 0)) < self.known_version(key):
            return
        await self.memory.set(key, document)
        if self.redis_available:
            errors = self.redis.stats.errors
            await self.redis.set(key, document, ttl or self.redis_ttl)
            if self.redis.stats.errors != errors:
                self._redis_failed()

    def on_notice(self, notice: ChangeNotice) -> None:
        """Drop the memory entry; the projector has already refreshed (or deleted) Redis."""
        self.memory.forget(notice.id)
        if notice.version > self._known.get(notice.id, 0):
            self._known[notice.id] = notice.version
            self._known.move_to_end(notice.id)
            if len(self._known) > self._known_max:
                self._known.popitem(last=False)

    async def delete(self, key: str) -> None:
        """This process's copy only: Redis is the projector's to refresh or delete."""
        self.memory.forget(key)

    async def invalidate(self, key: str) -> None:
        self.memory.forget(key)

    async def invalidate_by_event(self, event: Any) -> None:
        key = event_key(event)
        if key is not None:
            self.memory.forget(key)

    async def clear(self) -> None:
        self.clear_memory()

    def clear_memory(self) -> None:
        """After a lost subscription or a rebuild switch: notices may have been missed."""
        self.memory.forget_all()

    def _redis_failed(self) -> None:
        if self.redis_available:
            REDIS_DEGRADED.inc()
            logger.warning(
                "redis cache unavailable; serving reads from MongoDB for %.1fs",
                self.redis_retry_s,
            )
        self._redis_down_until = self._clock() + self.redis_retry_s
