import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from tandem.cache import InMemoryCache, MultiLevelCache
from tandem.cache.redis import RedisCache
from tandem.testing.contracts import CacheContract

pytestmark = pytest.mark.integration


def redis_clock(redis_client: Redis, prefix: str) -> Callable[[float], Awaitable[None]]:
    """Move Redis's clock forward for the keys under ``prefix``: each key's remaining TTL (as
    the adapter set it; ``PTTL``) shrinks by ``seconds``, and a key whose TTL runs out goes. A
    key stored without a TTL keeps none, so an adapter that forgets the TTL fails the test."""

    async def forward(seconds: float) -> None:
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            remaining = await redis_client.pttl(key)
            if remaining < 0:
                continue  # no TTL (-1) or gone (-2)
            if remaining <= seconds * 1000:
                await redis_client.delete(key)
            else:
                await redis_client.pexpire(key, remaining - int(seconds * 1000))

    return forward


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRedisCache(CacheContract):
    @pytest.fixture
    def prefix(self) -> str:
        return f"test:{uuid.uuid4().hex}:"

    @pytest.fixture
    async def cache(self, redis_client: Redis, prefix: str) -> AsyncIterator[RedisCache]:
        cache = RedisCache(redis_client, prefix=prefix, ttl=60)
        yield cache
        await cache.clear()

    @pytest.fixture
    def advance(self, redis_client: Redis, prefix: str) -> Callable[[float], Awaitable[None]]:
        return redis_clock(redis_client, prefix)

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
    def prefix(self) -> str:
        return f"test:{uuid.uuid4().hex}:"

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    async def cache(
        self, redis_client: Redis, prefix: str, clock: Clock
    ) -> AsyncIterator[MultiLevelCache]:
        cache = MultiLevelCache(
            InMemoryCache(ttl=60, clock=clock), RedisCache(redis_client, prefix=prefix)
        )
        yield cache
        await cache.clear()

    @pytest.fixture
    def advance(
        self, redis_client: Redis, prefix: str, clock: Clock
    ) -> Callable[[float], Awaitable[None]]:
        redis_forward = redis_clock(redis_client, prefix)

        async def forward(seconds: float) -> None:
            clock.now += seconds
            await redis_forward(seconds)

        return forward

    async def test_memory_refilled_from_redis(self, cache: MultiLevelCache) -> None:
        await cache.set("r", {"v": 1})
        await cache.memory.clear()
        assert await cache.get("r") == {"v": 1}
        assert await cache.memory.get("r") == {"v": 1}
