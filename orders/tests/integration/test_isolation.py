"""The catalog and orders in one deployment never touch each other, even with the same ids.

One query-service and one command-service serve both apps; two projector groups
(``products,category_stats`` and ``orders,customer_totals``) run as compose and the kustomize
base deploy them. Every test gives one id to a product *and* to an order on purpose: whatever is
keyed by id (Redis cache keys, the query process's LRU, ``min_version`` waiters, WebSocket
subscriptions) is also keyed by read model, and each projector group consumes its own topic only.
Names come from the declarations (``app.read_model(...)``, ``app.aggregates[0].topic``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from orders_system import (
    catalog_projector,
    eventually,
    metric,
    next_change,
    orders_projector,
    subscribed,
)
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.runtime.contract import READ_MODEL_POINTERS, ChangeNotice, cloudevent_headers
from tandem.testing.system import RunningSystem
from tandem_catalog.app import app as catalog
from tandem_catalog.events import ProductCreated
from tandem_orders.app import app as orders_app

pytestmark = pytest.mark.integration

PRODUCTS = catalog.read_model("products")
CATEGORY_STATS = catalog.read_model("category_stats")
ORDERS = orders_app.read_model("orders")
CUSTOMER_TOTALS = orders_app.read_model("customer_totals")

SEARCH_HITS = ("tandem_query_cache_lookups_total", {"level": "search", "result": "hit"})
WAITING = "tandem_query_min_version_waiting"


# --- what a user does over HTTP ----------------------------------------------------------------


async def create_product(
    http: httpx.AsyncClient, system: RunningSystem, product_id: str, category: str
) -> None:
    body = {
        "product_id": product_id,
        "name": f"product {product_id}",
        "description": "made for the isolation tests",
        "price": "2.00",
        "category": category,
    }
    created = await http.post(f"{system.commands}/api/products", json=body)
    assert created.status_code == 201, created.text


async def change_price(
    http: httpx.AsyncClient, system: RunningSystem, product_id: str, price: str
) -> int:
    changed = await http.post(
        f"{system.commands}/api/products/{product_id}/price", json={"price": price}
    )
    assert changed.status_code == 200, changed.text
    return int(changed.json()["version"])


async def place_order(
    http: httpx.AsyncClient, system: RunningSystem, order_id: str, customer_id: str
) -> None:
    body = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": "EUR",
        "lines": [{"product_id": order_id, "quantity": 2, "unit_price": "5.00"}],
    }
    placed = await http.post(f"{system.commands}/api/orders", json=body)
    assert placed.status_code == 201, placed.text


async def add_line(
    http: httpx.AsyncClient, system: RunningSystem, order_id: str, product_id: str
) -> int:
    added = await http.post(
        f"{system.commands}/api/orders/{order_id}/lines",
        json={"product_id": product_id, "quantity": 1, "unit_price": "1.50"},
    )
    assert added.status_code == 200, added.text
    return int(added.json()["version"])


async def read(
    http: httpx.AsyncClient, system: RunningSystem, route: str, doc_id: str, version: int
) -> dict[str, Any]:
    got = await http.get(
        f"{system.queries}{route}/{doc_id}", params={"min_version": version, "wait_ms": 30_000}
    )
    assert got.status_code == 200, got.text
    document: dict[str, Any] = got.json()
    return document


async def search(http: httpx.AsyncClient, system: RunningSystem, route: str, **params: str) -> Any:
    page = await http.get(f"{system.queries}{route}/search", params=params)
    assert page.status_code == 200, page.text
    return page.json()


async def notices_of(pubsub: Any, doc_id: str) -> list[tuple[str, ChangeNotice]]:
    """The notices received so far for ``doc_id``, with their channel."""
    out = []
    while (message := await pubsub.get_message(timeout=1)) is not None:
        if message["type"] != "message":
            continue
        channel = message["channel"]
        notice = ChangeNotice.model_validate_json(message["data"])
        if notice.id == doc_id:
            out.append((channel.decode() if isinstance(channel, bytes) else channel, notice))
    return out


def topics(system: RunningSystem) -> tuple[str, str]:
    prefix = system.env["TANDEM_TOPIC_PREFIX"]
    return prefix + catalog.aggregates[0].topic, prefix + orders_app.aggregates[0].topic


# --- the tests ---------------------------------------------------------------------------------


async def test_notices_caches_waiters_and_search_pages_stay_with_their_app(
    system: RunningSystem, http: httpx.AsyncClient, token: str, redis_client: Redis, same_id: str
) -> None:
    customer, category = f"c-{same_id}", f"k-{same_id}"
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(PRODUCTS.channel, ORDERS.channel)
    await create_product(http, system, same_id, category)
    await place_order(http, system, same_id, customer)
    await read(http, system, PRODUCTS.route, same_id, 1)
    order_v1 = await read(http, system, ORDERS.route, same_id, 1)

    # Redis: one key per read model, each holding its own app's document.
    cached_order = await _cached(redis_client, ORDERS.cache_key(same_id))
    cached_product = await _cached(redis_client, PRODUCTS.cache_key(same_id))
    assert (cached_order["customer_id"], cached_order["version"]) == (customer, 1)
    assert (cached_product["category"], cached_product["version"]) == (category, 1)
    assert "customer_id" not in cached_product
    assert "category" not in cached_order

    async with (
        websockets.connect(f"{system.ws}/ws/products?ids={same_id}") as product_ws,
        websockets.connect(f"{system.ws}/ws/orders?ids={same_id}") as order_ws,
    ):
        await subscribed(product_ws, token)
        await subscribed(order_ws, token)
        # Both search pages cached (the second look of each is a hit).
        order_page = await search(http, system, ORDERS.route, customer_id=customer)
        product_page = await search(http, system, PRODUCTS.route, category=category)
        hits = await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1])
        assert await search(http, system, ORDERS.route, customer_id=customer) == order_page
        assert await search(http, system, PRODUCTS.route, category=category) == product_page
        assert await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1]) == hits + 2
        await http.get(f"{system.queries}{ORDERS.route}/{same_id}")  # now in the LRU

        # A reader waits for order v2; the product with the same id reaches v2 meanwhile.
        waiting = asyncio.create_task(
            http.get(
                f"{system.queries}{ORDERS.route}/{same_id}",
                params={"min_version": 2, "wait_ms": 60_000},
            )
        )
        await eventually(
            lambda: _equals(metric(http, system.queries, WAITING), 1), "the order reader waits"
        )
        lookups = await _lookups(http, system)
        assert await change_price(http, system, same_id, "3.00") == 2
        frame = await next_change(product_ws)
        # The product's notice went through the query process (its socket got the frame) ...
        assert (frame["read_model"], frame["id"], frame["version"]) == ("products", same_id, 2)
        # ... and woke no order reader: nothing re-read an order, the reader still waits.
        assert await _lookups(http, system) == lookups
        assert await metric(http, system.queries, WAITING) == 1
        assert not waiting.done()
        # The order's LRU entry and search page survived the product's notice.
        memory_hits = await _lookups(http, system, "memory", "hit")
        assert (await http.get(f"{system.queries}{ORDERS.route}/{same_id}")).json() == order_v1
        assert await _lookups(http, system, "memory", "hit") == memory_hits + 1
        hits = await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1])
        assert await search(http, system, ORDERS.route, customer_id=customer) == order_page
        assert await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1]) == hits + 1
        # The product's own page was dropped: it shows the new price.
        repriced = await search(http, system, PRODUCTS.route, category=category)
        assert [(p["id"], p["price"]) for p in repriced["items"]] == [(same_id, 3.0)]
        assert await _cached(redis_client, ORDERS.cache_key(same_id)) == cached_order

        # Only the order's own v2 answers the reader, and its socket's first frame is the order's.
        assert await add_line(http, system, same_id, f"{same_id}-extra") == 2
        answered = await waiting
        assert (answered.status_code, answered.json()["version"]) == (200, 2)
        assert answered.json()["customer_id"] == customer
        frame = await next_change(order_ws)
        assert (frame["read_model"], frame["id"], frame["version"]) == ("orders", same_id, 2)
        # The reverse: the order's notice left the product's page in the page cache.
        hits = await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1])
        assert await search(http, system, PRODUCTS.route, category=category) == repriced
        assert await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1]) == hits + 1

    # A deadline passes on the order while the product reaches the awaited version: 409.
    stale_read = asyncio.create_task(
        http.get(
            f"{system.queries}{ORDERS.route}/{same_id}",
            params={"min_version": 3, "wait_ms": 3_000},
        )
    )
    await eventually(lambda: _equals(metric(http, system.queries, WAITING), 1), "reader waits")
    assert await change_price(http, system, same_id, "4.00") == 3
    assert (await read(http, system, PRODUCTS.route, same_id, 3))["price"] == 4.0
    stale = await stale_read
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_read_model"
    assert stale.json()["error"]["details"]["current_version"] == 2

    # Each channel carried its own read model's notices only.
    heard = await notices_of(pubsub, same_id)
    await pubsub.aclose()
    on_orders = [n for channel, n in heard if channel == ORDERS.channel]
    on_products = [n for channel, n in heard if channel == PRODUCTS.channel]
    assert [(n.read_model, n.version) for n in on_orders] == [("orders", 1), ("orders", 2)]
    assert {n.event_type for n in on_orders} == {"OrderPlaced", "OrderLineAdded"}
    assert [(n.read_model, n.version) for n in on_products] == [("products", v) for v in (1, 2, 3)]
    assert len(heard) == 5


async def test_each_projector_group_consumes_only_its_own_topic(
    system: RunningSystem,
    http: httpx.AsyncClient,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    same_id: str,
) -> None:
    order_only, product_only = f"{same_id}-order", f"{same_id}-product"
    await create_product(http, system, same_id, f"k-{same_id}")
    await create_product(http, system, product_only, f"k-{same_id}")
    await place_order(http, system, same_id, f"c-{same_id}")
    await place_order(http, system, order_only, f"c-{same_id}")
    for product_id in (same_id, product_only):
        await read(http, system, PRODUCTS.route, product_id, 1)
    for order_id in (same_id, order_only):
        await read(http, system, ORDERS.route, order_id, 1)

    orders_lettered = await _dead_lettered(http, orders_projector(system))

    # Each projector applied exactly its own app's events (all of them, nothing else).
    write_db = mongo_client[system.env["TANDEM_MONGO_WRITE_DB"]]
    for projector, app in (
        (catalog_projector(system), catalog),
        (orders_projector(system), orders_app),
    ):
        stored = await write_db[app.events_collection].count_documents({})
        await eventually(
            lambda url=projector.url, stored=stored: _equals(  # type: ignore[misc]
                metric(http, url, "tandem_projector_events_total", outcome="applied"), stored
            ),
            f"{app.name}'s projector applied the {stored} events of its store",
        )
    # Caught up on its own topic, each group has committed offsets there and nowhere else.
    product_topic, order_topic = topics(system)
    catalog_group = catalog_projector(system).env["TANDEM_GROUP_ID"]
    orders_group = orders_projector(system).env["TANDEM_GROUP_ID"]
    assert await _committed_topics(system, catalog_group, product_topic) == {product_topic}
    assert await _committed_topics(system, orders_group, order_topic) == {order_topic}
    # Neither dead-lettered anything here: no record of the other app's topic reached it.
    assert await _dead_lettered(http, orders_projector(system)) == orders_lettered
    assert (
        await metric(
            http,
            catalog_projector(system).url,
            "tandem_projector_events_total",
            outcome="dead_lettered",
        )
        == 0
    )

    # Neither read model holds the other's documents.
    read_db = mongo_client[system.env["TANDEM_MONGO_READ_DB"]]
    products = read_db[await _active(read_db, PRODUCTS.name)]
    orders = read_db[await _active(read_db, ORDERS.name)]
    assert await products.find_one({"_id": order_only}) is None
    assert await orders.find_one({"_id": product_only}) is None
    assert await products.count_documents({"customer_id": {"$exists": True}}) == 0
    assert await orders.count_documents({"category": {"$exists": True}}) == 0
    missing = await http.get(f"{system.queries}{PRODUCTS.route}/{order_only}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    missing = await http.get(f"{system.queries}{ORDERS.route}/{product_only}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


async def test_a_poison_order_event_is_dead_lettered_while_the_catalog_flows(
    system: RunningSystem, http: httpx.AsyncClient, same_id: str
) -> None:
    product_topic, order_topic = topics(system)
    lettered = int(await _dead_lettered(http, orders_projector(system)))
    # Two records the orders projector cannot apply: not JSON, and a catalog event sent to
    # the orders topic by mistake (unknown to the orders app).
    stray = ProductCreated(
        aggregate_id=same_id, name="stray", description="", price=Decimal(1), category="x"
    )
    producer = AIOKafkaProducer(bootstrap_servers=system.env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await producer.send_and_wait(order_topic, b"{not json", key=same_id.encode())
        await producer.send_and_wait(
            order_topic, stray.to_json(), key=same_id.encode(), headers=cloudevent_headers(stray)
        )
    finally:
        await producer.stop()

    # Catalog traffic keeps converging, and the orders partition flows past the poison.
    await create_product(http, system, same_id, f"k-{same_id}")
    assert await change_price(http, system, same_id, "7.00") == 2
    assert (await read(http, system, PRODUCTS.route, same_id, 2))["price"] == 7.0
    await place_order(http, system, same_id, f"c-{same_id}")
    assert (await read(http, system, ORDERS.route, same_id, 1))["customer_id"] == f"c-{same_id}"
    await eventually(
        lambda: _equals(_dead_lettered(http, orders_projector(system)), lettered + 2),
        "the orders projector dead-lettered both records",
    )
    assert await _dead_lettered(http, catalog_projector(system)) == 0

    code, output = await system.projector_cli("dlq", "list")
    assert code == 0, output
    letters = [line for line in output.splitlines() if f"key={same_id} " in line]
    assert len(letters) == 2, output
    assert {f"from={order_topic}" in line for line in letters} == {True}
    assert any("reason=decode_error" in line for line in letters)
    assert any("reason=unknown_event_type" in line for line in letters)
    assert f"{order_topic}.dlq: {lettered + 2} dead letter(s)" in output
    assert f"{product_topic}.dlq: 0 dead letter(s)" in output


async def test_rebuilding_orders_leaves_the_catalog_untouched(
    system: RunningSystem,
    http: httpx.AsyncClient,
    redis_client: Redis,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    same_id: str,
) -> None:
    customer, category = f"c-{same_id}", f"k-{same_id}"
    await create_product(http, system, same_id, category)
    assert await change_price(http, system, same_id, "9.00") == 2
    await place_order(http, system, same_id, customer)
    await place_order(http, system, f"{same_id}-2", customer)
    submitted = await http.post(f"{system.commands}/api/orders/{same_id}/submit")
    assert submitted.status_code == 200, submitted.text
    await read(http, system, PRODUCTS.route, same_id, 2)
    await read(http, system, ORDERS.route, same_id, 2)
    await read(http, system, ORDERS.route, f"{same_id}-2", 1)
    await eventually(
        lambda: _shows(http, system, CATEGORY_STATS.route, category=category, price_sum=9.0),
        "category stats count the product at its new price",
    )
    await eventually(
        lambda: _shows(
            http, system, CUSTOMER_TOTALS.route, customer_id=customer, submitted_orders=1
        ),
        "customer totals count the submitted order",
    )
    await eventually(
        lambda: _cached_version(redis_client, PRODUCTS.cache_key(same_id), 2),
        "the projector cached the product's last version",
    )

    read_db = mongo_client[system.env["TANDEM_MONGO_READ_DB"]]
    catalog_before = await _catalog_state(read_db, redis_client, same_id)
    orders_before = await search(http, system, ORDERS.route, customer_id=customer)
    totals_before = (await http.get(f"{system.queries}{CUSTOMER_TOTALS.route}")).json()
    orders_collection = await _active(read_db, ORDERS.name)
    product_page = await search(http, system, PRODUCTS.route, category=category)
    hits = await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1])

    code, output = await system.projector_cli("rebuild", ORDERS.name)
    assert code == 0, output

    assert await _active(read_db, ORDERS.name) != orders_collection  # orders did switch
    assert await _catalog_state(read_db, redis_client, same_id) == catalog_before
    # The catalog's search page outlived the orders switch (its notice is the orders one's).
    assert await search(http, system, PRODUCTS.route, category=category) == product_page
    assert await metric(http, system.queries, SEARCH_HITS[0], **SEARCH_HITS[1]) == hits + 1
    await eventually(
        lambda: _equals(_search_items(http, system, customer), orders_before["items"]),
        "the rebuilt orders read model answers the search",
    )
    assert await search(http, system, ORDERS.route, customer_id=customer) == orders_before
    assert (await http.get(f"{system.queries}{CUSTOMER_TOTALS.route}")).json() == totals_before


# --- helpers -----------------------------------------------------------------------------------


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _cached(redis: Redis, key: str) -> Any:
    raw = await redis.get(key)
    assert raw is not None, f"no Redis entry {key}"
    return orjson.loads(raw)


async def _cached_version(redis: Redis, key: str, version: int) -> bool:
    raw = await redis.get(key)
    return raw is not None and orjson.loads(raw)["version"] == version


async def _lookups(
    http: httpx.AsyncClient, system: RunningSystem, level: str | None = None, result: str = ""
) -> float:
    """Document cache lookups of the query process (memory and Redis levels)."""
    name = "tandem_query_cache_lookups_total"
    if level is not None:
        return await metric(http, system.queries, name, level=level, result=result)
    return await metric(http, system.queries, name, level="memory") + await metric(
        http, system.queries, name, level="redis"
    )


async def _dead_lettered(http: httpx.AsyncClient, projector: Any) -> float:
    return await metric(
        http, projector.url, "tandem_projector_events_total", outcome="dead_lettered"
    )


async def _committed_topics(system: RunningSystem, group: str, expected: str) -> set[str]:
    """The topics ``group`` has committed offsets on, once its commits on ``expected`` reach
    the topic's end (so a group that also read another topic has committed there too)."""
    bootstrap = system.env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await ends.start()
    try:
        await ends.topics()  # fetches the cluster's metadata
        partitions = ends.partitions_for_topic(expected) or set()
        end = await ends.end_offsets([TopicPartition(expected, p) for p in partitions])
        for _ in range(300):
            offsets = await admin.list_consumer_group_offsets(group)
            committed = {tp.topic for tp, meta in offsets.items() if meta.offset >= 0}
            if all(tp in offsets and offsets[tp].offset >= at for tp, at in end.items()):
                return committed
            await asyncio.sleep(0.2)
        raise AssertionError(f"{group} never committed {expected} up to {end}: {offsets}")
    finally:
        await admin.close()
        await ends.stop()


async def _active(read_db: Any, read_model: str) -> str:
    pointer = await read_db[READ_MODEL_POINTERS].find_one({"_id": read_model})
    return str(pointer["active"]) if pointer else read_model


async def _shows(http: httpx.AsyncClient, system: RunningSystem, route: str, **fields: Any) -> bool:
    """Whether a totals read model has an item with these fields: a derived read model folds
    after the products and orders it derives from, so a snapshot waits for its last change."""
    items = (await http.get(f"{system.queries}{route}")).json()["items"]
    return any(all(item.get(k) == v for k, v in fields.items()) for item in items)


async def _search_items(http: httpx.AsyncClient, system: RunningSystem, customer: str) -> Any:
    return (await search(http, system, ORDERS.route, customer_id=customer))["items"]


async def _catalog_state(read_db: Any, redis: Redis, product_id: str) -> dict[str, Any]:
    """The catalog's read side as stored: its collections' documents, its pointers, and the
    Redis entry of the product."""
    state: dict[str, Any] = {}
    for rm in (PRODUCTS, CATEGORY_STATS):
        collection = await _active(read_db, rm.name)
        state[rm.name] = (collection, await read_db[collection].find({}).sort("_id").to_list())
        state[f"{rm.name} pointer"] = await read_db[READ_MODEL_POINTERS].find_one({"_id": rm.name})
    names = await read_db.list_collection_names()
    state["collections"] = sorted(n for n in names if n.startswith(("products", "category")))
    state["redis"] = await redis.get(PRODUCTS.cache_key(product_id))
    return state
