from collections.abc import Awaitable, Callable

import pytest
from tandem.cache import InMemoryCache
from tandem.testing.contracts import CacheContract

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryCache(CacheContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def cache(self, clock: Clock) -> InMemoryCache:
        return InMemoryCache(max_size=100, ttl=60, clock=clock)

    @pytest.fixture
    def advance(self, clock: Clock) -> Callable[[float], Awaitable[None]]:
        async def forward(seconds: float) -> None:
            clock.now += seconds

        return forward
