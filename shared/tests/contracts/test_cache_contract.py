"""One contract for every ReadModelCache: memory (unit), Redis and memory-over-Redis
(integration)."""

import asyncio
import uuid

import pytest
from tandem.cache import InMemoryCache, MultiLevelCache
from tandem.cache.redis import RedisCache
from tandem.events import DomainEvent


class PriceChanged(DomainEvent):
    price: float


class CacheContract:
    @pytest.fixture
    async def cache(self):
        raise NotImplementedError

    async def test_miss_then_hit(self, cache):
        assert await cache.get("k") is None
        await cache.set("k", {"id": "k", "price": 29.99, "tags": ["a"]})
        assert await cache.get("k") == {"id": "k", "price": 29.99, "tags": ["a"]}
        assert cache.stats.hits >= 1
        assert cache.stats.misses >= 1

    async def test_values_are_copies(self, cache):
        await cache.set("c", {"n": 1})
        got = await cache.get("c")
        got["n"] = 2
        assert await cache.get("c") == {"n": 1}

    async def test_delete_and_invalidate(self, cache):
        await cache.set("a", {"v": 1})
        await cache.set("b", {"v": 2})
        await cache.delete("a")
        await cache.invalidate("b")
        await cache.delete("never-set")
        assert await cache.get("a") is None
        assert await cache.get("b") is None

    async def test_invalidate_by_event_uses_aggregate_id(self, cache):
        await cache.set("p-1", {"v": 1})
        await cache.set("p-2", {"v": 2})
        await cache.invalidate_by_event(
            PriceChanged(aggregate_id="p-1", aggregate_type="Product", price=1)
        )
        assert await cache.get("p-1") is None
        assert await cache.get("p-2") == {"v": 2}

    async def test_ttl_expires(self, cache):
        await cache.set("t", {"v": 1}, ttl=0.05)
        assert await cache.get("t") == {"v": 1}
        await asyncio.sleep(0.12)
        assert await cache.get("t") is None

    async def test_clear(self, cache):
        await cache.set("x", 1)
        await cache.set("y", [1, 2])
        await cache.clear()
        assert await cache.get("x") is None
        assert await cache.get("y") is None


@pytest.mark.unit
class TestInMemoryCache(CacheContract):
    @pytest.fixture
    async def cache(self):
        return InMemoryCache(max_size=100, ttl=60)


@pytest.mark.integration
class TestRedisCache(CacheContract):
    @pytest.fixture
    async def cache(self, redis_client):
        cache = RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:", ttl=60)
        yield cache
        await cache.clear()

    async def test_clear_only_touches_its_prefix(self, cache, redis_client):
        other = RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:")
        await other.set("keep", 1)
        await cache.set("drop", 1)
        await cache.clear()
        assert await other.get("keep") == 1
        await other.clear()


@pytest.mark.integration
class TestMultiLevelCache(CacheContract):
    @pytest.fixture
    async def cache(self, redis_client):
        cache = MultiLevelCache(
            InMemoryCache(ttl=60), RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:")
        )
        yield cache
        await cache.clear()

    async def test_memory_refilled_from_redis(self, cache):
        await cache.set("r", {"v": 1})
        await cache.memory.clear()
        assert await cache.get("r") == {"v": 1}
        assert await cache.memory.get("r") == {"v": 1}
