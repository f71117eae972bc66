"""Unit tests (no servers): waiters, caches, filters, fan-out, settings, tickets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError
from tandem.api.websocket import LiveClient
from tandem.auth import AuthError, JWTVerifier, issue_token
from tandem.cache.base import CacheStats
from tandem.cache.memory import InMemoryCache
from tandem.read_model import ReadModel
from tandem.read_model.documents import to_api
from tandem.read_model.filters import to_mongo, to_mongo_sort
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.cache import DocumentCache
from tandem.runtime.query.fanout import RedisChangeFeed
from tandem.runtime.query.settings import QueryServiceSettings
from tandem.runtime.query.versions import VersionWaiters
from tandem.runtime.query.ws import TICKET_SCOPE, WsAuthenticator
from tandem_catalog.app import app
from tandem_catalog.queries import SearchProducts
from tandem_catalog.testing import PRODUCTS

pytestmark = pytest.mark.unit


def change(product_id: str, version: int, event_type: str = "ProductPriceChanged") -> ChangeNotice:
    return ChangeNotice(
        read_model=PRODUCTS.name,
        id=product_id,
        version=version,
        event_type=event_type,
        changed_fields={},
    )


async def test_waiter_wakes_on_the_notice_not_before() -> None:
    waiters = VersionWaiters()
    versions = iter([1, 3])

    async def read_version() -> int:
        return next(versions)

    task = asyncio.create_task(waiters.wait_for("p", 3, read_version, timeout=5))
    await asyncio.sleep(0.01)
    waiters.on_notice(change("p", 2))  # too old: not even a re-read
    await asyncio.sleep(0.01)
    assert not task.done()
    waiters.on_notice(change("p", 3))
    assert await task == (True, 3)
    assert len(waiters) == 0


async def test_waiter_times_out_with_the_version_it_has() -> None:
    waiters = VersionWaiters()

    async def read_version() -> int:
        return 4

    assert await waiters.wait_for("p", 9, read_version, timeout=0.05) == (False, 4)
    assert len(waiters) == 0


async def test_lru_evicts_least_recent_and_expires_and_does_not_copy() -> None:
    now = [0.0]
    lru = InMemoryCache(2, ttl=10, clock=lambda: now[0], copies=False)
    held = {"v": 1}
    await lru.set("a", held)
    await lru.set("b", {"v": 2})
    assert lru.peek("a") is held
    await lru.set("c", {"v": 3})
    assert lru.peek("b") is None
    now[0] = 11
    assert lru.peek("a") is None


class FakeRedisCache:
    def __init__(self, fail: bool = False) -> None:
        self.stats = CacheStats()
        self.fail = fail
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        if self.fail:
            self.stats.errors += 1
            return None
        return self.data.get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if self.fail:
            self.stats.errors += 1
            return
        self.data[key] = value


async def test_cache_refuses_entries_older_than_a_seen_notice() -> None:
    redis = FakeRedisCache()
    cache = DocumentCache(InMemoryCache(10, 60, copies=False), redis, redis_ttl=60)  # type: ignore[arg-type]
    await cache.set("p", {"id": "p", "version": 1})
    assert await cache.get("p") == {"id": "p", "version": 1}
    cache.on_notice(change("p", 2))
    assert await cache.get("p") is None  # memory dropped, Redis copy is older than the notice
    await cache.set("p", {"id": "p", "version": 1})  # a racing stale fill is ignored
    assert await cache.get("p") is None


async def test_redis_failure_opens_the_breaker_once() -> None:
    now = [0.0]
    redis = FakeRedisCache(fail=True)
    cache = DocumentCache(
        InMemoryCache(10, 60, copies=False),
        redis,
        redis_ttl=60,
        redis_retry_s=5,
        clock=lambda: now[0],  # type: ignore[arg-type]
    )
    assert await cache.get("x") is None
    assert not cache.redis_available
    assert await cache.get("y") is None
    assert redis.stats.errors == 1  # Redis not asked again while the breaker is open
    now[0] = 6
    assert cache.redis_available


def test_search_filter_escapes_user_text_and_combines_filters() -> None:
    """The declared search becomes the library's SearchQuery; the one filter builder turns it
    into a MongoDB filter on the flat documents."""
    spec = app.read_model("products").search
    assert spec is not None
    query = spec.to_search(SearchProducts(q="a.b*(c)", category="books", min_price=1, max_price=5))
    mongo = to_mongo(query.filters, query.search_term, spec.text_fields)
    pattern = {"$regex": r"a\.b\*\(c\)", "$options": "i"}
    assert mongo == {
        "category": {"$eq": "books"},
        "price": {"$gte": 1, "$lte": 5},
        "$or": [{"name": pattern}, {"description": pattern}],
    }
    sorted_by = spec.to_search(SearchProducts(sort="-price")).sort
    assert to_mongo_sort(sorted_by) == [("price", -1), ("_id", 1)]


@pytest.mark.parametrize(
    "params",
    [{"page_size": 101}, {"sort": "_id"}, {"min_price": -1}, {"page": 0}],
)
def test_search_parameters_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SearchProducts.model_validate(params)


def test_to_api_drops_mongo_id() -> None:
    assert to_api({"_id": "p", "name": "n"}) == {"id": "p", "name": "n"}


async def test_the_change_feed_serializes_once_and_filters_by_type() -> None:
    feed = RedisChangeFeed()
    prices: list[Any] = []
    created: list[Any] = []
    await feed.subscribe("ProductPriceChanged", prices.append)
    await feed.subscribe("ProductPriceChanged", created.append)
    await feed.subscribe("ProductCreated", created.append)
    feed.on_notice(change("a", 1), b"")
    feed.on_notice(change("b", 1, "ProductCreated"), b"")
    assert [m.id for m in prices] == ["a"]
    assert [m.id for m in created] == ["a", "b"]
    assert prices[0].ws_frame is created[0].ws_frame  # the same string object: serialized once
    assert prices[0].ws_frame.startswith('{"type":"change"')


def test_overflow_drops_the_client() -> None:
    client = LiveClient(2, ["ProductPriceChanged"], None)
    for _ in range(3):
        client.offer("frame")
    assert client.dropped
    assert not client.frames


def test_settings_bound_the_wait() -> None:
    with pytest.raises(ValidationError):
        QueryServiceSettings(wait_ms_default=5000, wait_ms_max=1000)
    assert QueryServiceSettings().http_port == 8002


def test_tickets_must_be_short_lived_and_single_use() -> None:
    settings = QueryServiceSettings(environment="test")
    authenticator = WsAuthenticator(JWTVerifier(settings), ticket_ttl=30, scope="products:read")
    ticket = issue_token(settings, "r", ["products:read", TICKET_SCOPE], 30)
    assert authenticator.ticket(ticket).subject == "r"
    with pytest.raises(AuthError):
        authenticator.ticket(ticket)
    with pytest.raises(AuthError):
        authenticator.ticket(issue_token(settings, "r", ["products:read", TICKET_SCOPE], 3600))
    with pytest.raises(AuthError):
        authenticator.ticket(issue_token(settings, "r", ["products:read"], 30))


def test_openapi_documents_every_status_it_answers() -> None:
    """schemathesis: /dev/token answers 403 ``development_only`` and 400; search says that an
    empty price range is an empty page, not a 422."""
    from tandem.runtime.query.bootstrap import create_app

    document = create_app(QueryServiceSettings(environment="test")).openapi()
    token = document["paths"]["/dev/token"]["post"]["responses"]
    assert {"200", "400", "403", "422"} <= set(token)
    assert "development_only" in token["403"]["description"]
    search = document["paths"]["/api/products/search"]["get"]["responses"]
    assert "matches nothing" in search["422"]["description"]


class CountingRepository:
    """MongoDB stand-in for the handler: counts reads, serves what the 'projector' wrote."""

    model_type = ReadModel

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.reads = 0

    async def get_document(self, product_id: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.docs.get(product_id)


async def test_a_min_version_read_woken_by_a_notice_is_served_from_the_cache() -> None:
    from tandem.read_model.service import ReadModelService
    from tandem.runtime.query.handlers import GetDocumentHandler
    from tandem.runtime.query.queries import GetDocument

    redis, reader, waiters = FakeRedisCache(), CountingRepository(), VersionWaiters()
    cache = DocumentCache(InMemoryCache(10, 60, copies=False), redis, redis_ttl=60)  # type: ignore[arg-type]
    handler = GetDocumentHandler(
        ReadModelService(reader, cache=cache),  # type: ignore[arg-type]
        cache,
        waiters,
        default_wait_ms=2000,
        max_wait_ms=2000,
    )
    reader.docs["p"] = {"id": "p", "version": 1}
    await cache.set("p", {"id": "p", "version": 1})
    task = asyncio.create_task(handler.handle(GetDocument(id="p", min_version=2)))
    await asyncio.sleep(0.02)
    assert not task.done()
    assert reader.reads == 1  # the one look at MongoDB before waiting
    # The projector: MongoDB, then Redis, then the notice.
    reader.docs["p"] = redis.data["p"] = {"id": "p", "version": 2}
    cache.on_notice(change("p", 2))
    waiters.on_notice(change("p", 2))
    result = await task
    assert result.is_success
    assert result.value.version == 2
    assert reader.reads == 1  # answered from Redis after the notice
