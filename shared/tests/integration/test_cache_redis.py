import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from tandem.cache import InMemoryCache, MultiLevelCache
from tandem.cache.redis import RedisCache
from tandem.testing.contracts import CacheContract

pytestmark = pytest.mark.integration


class TestRedisCache(CacheContract):
    @pytest.fixture
    async def cache(self, redis_client: Redis) -> AsyncIterator[RedisCache]:
        cache = RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:", ttl=60)
        yield cache
        await cache.clear()

    async def test_clear_only_touches_its_prefix(
        self, cache: RedisCache, redis_client: Redis
    ) -> None:
        other = RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:")
        await other.set("keep", 1)
        await cache.set("drop", 1)
        await cache.clear()
        assert await other.get("keep") == 1
        await other.clear()


class TestMultiLevelCache(CacheContract):
    @pytest.fixture
    async def cache(self, redis_client: Redis) -> AsyncIterator[MultiLevelCache]:
        cache = MultiLevelCache(
            InMemoryCache(ttl=60), RedisCache(redis_client, prefix=f"test:{uuid.uuid4().hex}:")
        )
        yield cache
        await cache.clear()

    async def test_memory_refilled_from_redis(self, cache: MultiLevelCache) -> None:
        await cache.set("r", {"v": 1})
        await cache.memory.clear()
        assert await cache.get("r") == {"v": 1}
        assert await cache.memory.get("r") == {"v": 1}
