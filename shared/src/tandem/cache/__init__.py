"""Read-model caches: in-memory (LRU + TTL), Redis, and memory in front of Redis."""

from typing import TYPE_CHECKING, Any

from tandem.cache.base import CacheStats, ReadModelCache
from tandem.cache.memory import InMemoryCache
from tandem.cache.multilevel import MultiLevelCache

__all__ = ["CacheStats", "InMemoryCache", "MultiLevelCache", "ReadModelCache", "RedisCache"]

# MongoDB/Redis adapters load on first use, so ``import tandem`` does not import their drivers.
if TYPE_CHECKING:
    from tandem.cache.redis import RedisCache


def __getattr__(name: str) -> Any:
    if name == "RedisCache":
        from tandem.cache.redis import RedisCache

        return RedisCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
