import socket

import pytest
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tandem.cache import InMemoryCache, MultiLevelCache
from tandem.cache.redis import RedisCache

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_lru_evicts_least_recently_used():
    cache = InMemoryCache(max_size=2, ttl=None)
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.get("a") == 1  # "a" is now the most recent
    await cache.set("c", 3)
    assert await cache.get("b") is None
    assert await cache.get("a") == 1
    assert len(cache) == 2


async def test_default_ttl_with_clock():
    clock = FakeClock()
    cache = InMemoryCache(ttl=10, clock=clock)
    await cache.set("a", 1)
    clock.now = 9.9
    assert await cache.get("a") == 1
    clock.now = 10
    assert await cache.get("a") is None


def test_max_size_must_be_positive():
    with pytest.raises(ValueError, match="max_size"):
        InMemoryCache(max_size=0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def dead_redis():
    client = Redis(
        port=closed_port(),
        socket_connect_timeout=0.2,
        socket_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    yield client
    await client.aclose()


async def test_redis_outage_is_a_miss_and_counted(dead_redis):
    cache = RedisCache(dead_redis, prefix="x:")
    await cache.set("k", {"v": 1})
    assert await cache.get("k") is None
    await cache.delete("k")
    await cache.invalidate_by_event({"aggregate_id": "k"})
    await cache.clear()
    assert cache.stats.errors == 5
    assert cache.stats.misses == 1


async def test_multilevel_serves_from_memory_when_redis_is_down(dead_redis):
    cache = MultiLevelCache(InMemoryCache(), RedisCache(dead_redis))
    await cache.set("k", {"v": 1})
    assert await cache.get("k") == {"v": 1}
    assert await cache.get("other") is None
