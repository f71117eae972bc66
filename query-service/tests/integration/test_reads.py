"""GET by id, caches, search and stats against real MongoDB-wire and Redis servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.auth import issue_token
from tandem.runtime.contract import READ_MODEL_POINTERS
from tandem.runtime.query.testing import running
from tandem_catalog.testing import PRODUCTS, notice, product_doc

pytestmark = pytest.mark.integration


async def _until(check: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_miss_fills_both_caches_and_a_notice_invalidates_memory(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings(cache_ttl_s=120)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p1", 1, price=5.0))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            first = await http.get("/api/products/p1")
            assert first.status_code == 200
            assert first.json()["price"] == 5.0
            assert first.headers["etag"] == '"1"'
            assert first.headers["x-read-model-version"] == "1"
            key = f"{PRODUCTS.cache_prefix}p1"
            assert orjson.loads(await redis_client.get(key))["version"] == 1
            assert 0 < await redis_client.ttl(key) <= 120

            # The projector updates MongoDB and Redis; until its notice, this process keeps
            # serving its LRU copy (that is what the notice is for).
            await db.products.replace_one({"_id": "p1"}, product_doc("p1", 2, price=7.5))
            await redis_client.delete(key)
            assert (await http.get("/api/products/p1")).json()["version"] == 1

            await redis_client.publish(PRODUCTS.channel, notice("p1", 2, price=7.5))

            async def fresh() -> bool:
                return (await http.get("/api/products/p1")).json()["version"] == 2

            await _until(fresh)
            assert orjson.loads(await redis_client.get(key))["price"] == 7.5

            conditional = await http.get("/api/products/p1", headers={"If-None-Match": '"2"'})
            assert conditional.status_code == 304
            missing = await http.get("/api/products/nope")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


def memory_hits() -> float:
    return (
        REGISTRY.get_sample_value(
            "tandem_query_cache_lookups_total", {"level": "memory", "result": "hit"}
        )
        or 0.0
    )


async def test_cache_first_reads_answer_exactly_what_the_full_path_answers(
    make_settings: Any, mongo_client: AsyncMongoClient[Any]
) -> None:
    """A plain GET of a product in the LRU skips the query pipeline; its response must not
    differ from the full path's (same body, ETag, version header, 304), and anything that is
    not a plain read (a query string, X-Min-Version, an id that fails validation) must still
    take the full path."""
    settings = make_settings()
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p9", 4, price=9.5))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            labels = {
                "service": "query-service",
                "method": "GET",
                "route": "/api/products/{id}",
                "status": "200",
            }

            def served() -> float:
                return REGISTRY.get_sample_value("tandem_http_requests_total", labels) or 0.0

            before = served()
            full = await http.get("/api/products/p9")  # a miss: full path, fills the LRU
            hits = memory_hits()
            fast = await http.get("/api/products/p9")
            assert memory_hits() == hits + 1
            # Both paths are counted under the route's template, not as "unmatched".
            assert served() == before + 2
            assert fast.status_code == full.status_code == 200
            assert fast.content == full.content
            for header in ("etag", "x-read-model-version", "cache-control", "content-type"):
                assert fast.headers[header] == full.headers[header], header
            not_modified = await http.get("/api/products/p9", headers={"If-None-Match": '"4"'})
            assert not_modified.status_code == 304
            assert not_modified.headers["etag"] == '"4"'

            stale = await http.get("/api/products/p9", params={"min_version": 5, "wait_ms": 0})
            assert stale.status_code == 409  # the query string took the full path
            header = await http.get("/api/products/p9", headers={"X-Min-Version": "5"})
            assert header.status_code == 409
            bad = await http.get("/api/products/p9", params={"min_version": "x"})
            assert bad.status_code == 422
            too_long = await http.get("/api/products/" + "x" * 300)
            assert too_long.status_code == 422
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_with_read_auth_a_cached_product_still_needs_a_token(
    make_settings: Any, mongo_client: AsyncMongoClient[Any]
) -> None:
    """The cache-first route exists only when reads need no token; with
    ``read_auth_required`` every read, cached or not, goes through the scope check."""
    settings = make_settings(read_auth_required=True)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p7", 2))
    reader = {"Authorization": f"Bearer {issue_token(settings, 'r', ['products:read'], 60)}"}
    writer = {"Authorization": f"Bearer {issue_token(settings, 'w', ['products:write'], 60)}"}
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            first = await http.get("/api/products/p7", headers=reader)  # fills the LRU
            assert first.status_code == 200
            assert (await http.get("/api/products/p7", headers=reader)).status_code == 200
            anonymous = await http.get("/api/products/p7")
            assert anonymous.status_code == 401
            assert anonymous.json()["detail"]["error"]["code"] == "missing_token"
            assert (await http.get("/api/products/p7", headers=writer)).status_code == 403
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_a_redis_entry_is_served_without_touching_mongodb(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings()
    cached = {k: v for k, v in product_doc("only-in-redis", 4).items() if k != "_id"}
    await redis_client.set(f"{PRODUCTS.cache_prefix}only-in-redis", orjson.dumps(cached), ex=60)
    async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/products/only-in-redis")
    assert response.status_code == 200
    assert response.json()["version"] == 4


def _catalog() -> list[dict[str, Any]]:
    docs = []
    for i in range(30):
        category = ("books", "games", "tools")[i % 3]
        status = "discontinued" if i % 10 == 9 else "active"
        docs.append(
            product_doc(
                f"id-{i:02d}",
                1,
                name=f"{'Red' if i % 2 else 'Blue'} item {i:02d}",
                description="special (a+b) edition" if i == 7 else "plain",
                price=float(i) + 0.5,
                category=category,
                status=status,
                updated_at=f"2025-01-{i + 1:02d}T00:00:00+00:00",
            )
        )
    return docs


async def test_search_filters_sorting_paging_and_totals(
    make_settings: Any, mongo_client: AsyncMongoClient[Any]
) -> None:
    settings = make_settings()
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_many(_catalog())
    await db.category_stats.insert_many(
        [
            # As the projector keeps them: integer counters, and bookkeeping beside them.
            {
                "_id": "books",
                "active_count": 4,
                "price_sum_cents": 1000,
                "price_sum": 10.0,
                "offsets": {"0": 7},
            },
            {"_id": "empty", "active_count": 0, "price_sum_cents": 0, "price_sum": 0.0},
        ]
    )
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:

            async def search(**params: Any) -> dict[str, Any]:
                response = await http.get("/api/products/search", params=params)
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body

            everything = await search(page_size=100)
            assert everything["total"] == 30
            assert [p["name"] for p in everything["items"]] == sorted(
                p["name"] for p in everything["items"]
            )

            red = await search(q="rEd", page_size=100)  # case-insensitive
            assert red["total"] == 15
            assert all("Red" in p["name"] for p in red["items"])

            literal = await search(q="(a+b)")  # regex metacharacters are literal text
            assert [p["id"] for p in literal["items"]] == ["id-07"]
            assert (await search(q=".*"))["total"] == 0

            books = await search(category="books", min_price=3, max_price=20, sort="-price")
            prices = [p["price"] for p in books["items"]]
            assert prices == sorted(prices, reverse=True)
            assert all(p["category"] == "books" and 3 <= p["price"] <= 20 for p in books["items"])
            assert books["total"] == 6  # i in {3, 6, 9, 12, 15, 18}

            assert (await search(status="discontinued"))["total"] == 3

            pages = [await search(sort="price", page=n, page_size=7) for n in (1, 2, 3, 4, 5)]
            assert [page["pages"] for page in pages] == [5] * 5
            ids = [p["id"] for page in pages for p in page["items"]]
            assert ids == [f"id-{i:02d}" for i in range(30)]
            assert len(pages[4]["items"]) == 2

            for bad in (
                {"page_size": 101},
                {"page": 0},
                {"sort": "$where"},
                {"status": "deleted"},
                {"min_price": "cheap"},
                {"unknown": 1},
            ):
                response = await http.get("/api/products/search", params=bad)
                assert response.status_code == 422, bad
                assert response.json()["detail"][0]["loc"][0] == "query"

            # An empty price range is a valid question with no answer, not a client error.
            empty = await http.get("/api/products/search", params={"min_price": 5, "max_price": 1})
            assert empty.status_code == 200
            assert (empty.json()["total"], empty.json()["items"]) == (0, [])

            stats = (await http.get("/api/categories/stats")).json()["items"]
            assert stats[0] == {
                "category": "books",
                "active_count": 4,
                "price_sum": 10.0,
                "average_price": 2.5,
            }
            assert stats[1]["average_price"] is None
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_a_search_is_answered_again_from_memory_until_the_next_notice(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings()
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_many(_catalog())
    params = {"q": "red", "page_size": 5}
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:

            async def total() -> int:
                cid = {"X-Correlation-ID": uuid.uuid4().hex}  # per request; not part of the key
                response = await http.get("/api/products/search", params=params, headers=cid)
                assert response.status_code == 200
                return int(response.json()["total"])

            def hits() -> float:
                labels = {"level": "search", "result": "hit"}
                return REGISTRY.get_sample_value("tandem_query_cache_lookups_total", labels) or 0

            assert await total() == 15
            before = hits()
            # Written behind the service's back, with no notice: the remembered page stands.
            await db.products.insert_one(product_doc("red-new", 1, name="Red new"))
            assert await total() == 15
            assert hits() == before + 1
            # The projector's notice for that write: the next search reads MongoDB again.
            await redis_client.publish(PRODUCTS.channel, notice("red-new", 1))

            async def sees_it() -> bool:
                return await total() == 16

            await _until(sees_it)
            other = await http.get("/api/products/search", params={**params, "page": 2})
            assert other.json()["total"] == 16  # a different page is a different entry
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_reads_follow_the_pointer_after_a_rebuild_switch(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings(pointer_refresh_s=60)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p", 1, name="old"))
    await db.products_rebuild_1.insert_one(product_doc("p", 1, name="rebuilt"))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/products/search")).json()["items"][0]["name"] == "old"
            await db[READ_MODEL_POINTERS].insert_one(
                {"_id": "products", "active": "products_rebuild_1"}
            )
            await redis_client.publish(PRODUCTS.channel, notice("products", 0, "ReadModelSwitched"))

            async def switched() -> bool:
                page = (await http.get("/api/products/search")).json()
                return bool(page["items"][0]["name"] == "rebuilt")

            await _until(switched)
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_cors_allows_the_configured_origin_and_refuses_others(
    make_settings: Any, mongo_client: AsyncMongoClient[Any]
) -> None:
    allowed, other = "https://shop.example", "https://evil.example"
    settings = make_settings(cors_origins=[allowed])
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p-cors", 1))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            read = await http.get("/api/products/p-cors", headers={"Origin": allowed})
            assert read.status_code == 200
            assert read.headers["access-control-allow-origin"] == allowed
            assert "etag" in read.headers["access-control-expose-headers"].lower()
            preflight = await http.options(
                "/api/products/p-cors",
                headers={
                    "Origin": allowed,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "X-Min-Version",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == allowed
            assert "x-min-version" in preflight.headers["access-control-allow-headers"].lower()

            foreign = await http.get("/api/products/p-cors", headers={"Origin": other})
            assert foreign.status_code == 200  # served, but the browser may not read it
            assert "access-control-allow-origin" not in foreign.headers
            refused = await http.options(
                "/api/products/p-cors",
                headers={"Origin": other, "Access-Control-Request-Method": "GET"},
            )
            assert refused.status_code == 400
            assert "access-control-allow-origin" not in refused.headers
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)
