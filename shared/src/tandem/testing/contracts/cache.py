"""The read-model cache contract: every ``ReadModelCache`` adapter must pass these tests.

Subclass :class:`CacheContract` and provide a ``cache`` fixture, an empty cache whose default
TTL is a minute, and an ``advance`` fixture, ``await advance(seconds)``, that moves the cache's
clock forward. Expiry is checked on that clock, never by sleeping past a short TTL: on a busy
machine a 50 ms entry can expire before the read that should still see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tandem.cache.base import ReadModelCache
from tandem.events import DomainEvent


class ContractPriceChanged(DomainEvent):
    price: float


class CacheContract:
    """The tests every ``ReadModelCache`` must pass; needs a ``cache`` fixture."""

    async def test_miss_then_hit(self, cache: ReadModelCache) -> None:
        assert await cache.get("k") is None
        await cache.set("k", {"id": "k", "price": 29.99, "tags": ["a"]})
        assert await cache.get("k") == {"id": "k", "price": 29.99, "tags": ["a"]}
        assert cache.stats.hits >= 1
        assert cache.stats.misses >= 1

    async def test_values_are_copies(self, cache: ReadModelCache) -> None:
        await cache.set("c", {"n": 1})
        got = await cache.get("c")
        assert isinstance(got, dict)
        got["n"] = 2
        assert await cache.get("c") == {"n": 1}

    async def test_delete_and_invalidate(self, cache: ReadModelCache) -> None:
        await cache.set("a", {"v": 1})
        await cache.set("b", {"v": 2})
        await cache.delete("a")
        await cache.invalidate("b")
        await cache.delete("never-set")
        assert await cache.get("a") is None
        assert await cache.get("b") is None

    async def test_invalidate_by_event_uses_aggregate_id(self, cache: ReadModelCache) -> None:
        await cache.set("p-1", {"v": 1})
        await cache.set("p-2", {"v": 2})
        await cache.invalidate_by_event(
            ContractPriceChanged(aggregate_id="p-1", aggregate_type="Product", price=1)
        )
        assert await cache.get("p-1") is None
        assert await cache.get("p-2") == {"v": 2}

    async def test_ttl_expires(
        self, cache: ReadModelCache, advance: Callable[[float], Awaitable[None]]
    ) -> None:
        await cache.set("t", {"v": 1}, ttl=10)
        await cache.set("d", {"v": 2})  # the default TTL, a minute
        await advance(9)
        assert await cache.get("t") == {"v": 1}
        await advance(2)
        assert await cache.get("t") is None
        assert await cache.get("d") == {"v": 2}
        await advance(50)
        assert await cache.get("d") is None

    async def test_clear(self, cache: ReadModelCache) -> None:
        await cache.set("x", 1)
        await cache.set("y", [1, 2])
        await cache.clear()
        assert await cache.get("x") is None
        assert await cache.get("y") is None


__all__ = ["CacheContract", "ContractPriceChanged"]
