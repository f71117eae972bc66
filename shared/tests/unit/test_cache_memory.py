import pytest
from tandem.cache import InMemoryCache
from tandem.testing.contracts import CacheContract

pytestmark = pytest.mark.unit


class TestInMemoryCache(CacheContract):
    @pytest.fixture
    def cache(self) -> InMemoryCache:
        return InMemoryCache(max_size=100, ttl=60)
