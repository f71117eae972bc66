"""Events reach the topic: fast path, relay after a simulated crash, CloudEvents headers."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest
from tandem_catalog.app import app as catalog
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration

BODY = {"name": "Desk", "description": "oak", "price": "19.99", "category": "furniture"}


async def test_created_product_event_is_on_the_topic_with_cloudevents_headers(
    running: Any, consume_topic: Any
) -> None:
    response = await running.client.post(
        "/api/products", json=BODY, headers=running.headers(**{"X-Correlation-ID": "corr-123"})
    )
    assert response.status_code == 201
    product_id = response.json()["id"]
    assert response.json() == {"id": product_id, "version": 1}
    assert response.headers["location"] == f"/api/products/{product_id}"
    assert response.headers["x-correlation-id"] == "corr-123"

    [record] = await consume_topic(running.topic, 1)
    assert record.key == product_id.encode()
    headers = {name: value.decode() for name, value in record.headers}
    event = catalog.registry.deserialize_json(record.value)
    assert isinstance(event, ProductCreated)
    assert (event.aggregate_id, event.version, event.price) == (product_id, 1, Decimal("19.99"))
    assert event.correlation_id == "corr-123"
    assert headers == {
        "ce_id": event.event_id,
        "ce_type": "ProductCreated",
        "ce_source": "/tandem/command-service",
        "ce_specversion": "1.0",
        "ce_time": event.occurred_at.isoformat(),
        "ce_subject": product_id,
        "content-type": "application/json",
        "partitionkey": product_id,
        "ce_correlationid": "corr-123",
    }
    assert orjson.loads(record.value) == event.to_dict()

    # The fast path marks what it published, so the relay has nothing to redo.
    async with asyncio.timeout(10):
        while True:
            if not await running.store.list_unpublished():
                break
            await asyncio.sleep(0.05)


async def test_topic_is_created_with_the_configured_partitions(
    app_factory: Any, kafka_bootstrap: str
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async with app_factory(partitions=5) as running:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            [description] = await admin.describe_topics([running.topic])
        finally:
            await admin.close()
    assert len(description["partitions"]) == 5


async def test_relay_publishes_a_commit_whose_publish_was_skipped(
    app_factory: Any, consume_topic: Any
) -> None:
    async with app_factory(relay_grace_s=0.5, relay_interval_s=0.2) as running:
        store = running.store
        # A crash between the insert and the publish: the commit is stored, never queued.
        product_id = "crashed-1"
        await store.append(
            ProductCreated(
                aggregate_id=product_id,
                aggregate_type="Product",
                name="Lamp",
                description="",
                price=Decimal("3.50"),
                category="lights",
            ),
            expected_version=0,
        )
        await store.append(
            ProductPriceChanged(
                aggregate_id=product_id,
                aggregate_type="Product",
                version=2,
                old_price=Decimal("3.50"),
                price=Decimal("4.00"),
            ),
            expected_version=1,
        )
        records = await consume_topic(running.topic, 2, timeout=20)
        assert [r.key for r in records] == [product_id.encode()] * 2
        versions = [catalog.registry.deserialize_json(r.value).version for r in records]
        assert versions == [1, 2]  # per-aggregate version order
        async with asyncio.timeout(10):
            while True:
                if not await store.list_unpublished():
                    break
                await asyncio.sleep(0.1)


async def test_updates_follow_in_version_order_on_one_partition(
    running: Any, consume_topic: Any
) -> None:
    created = await running.client.post("/api/products", json=BODY, headers=running.headers())
    product_id = created.json()["id"]
    for version, price in enumerate(["20", "21", "22"], start=1):
        response = await running.client.post(
            f"/api/products/{product_id}/price",
            json={"price": price},
            headers=running.headers(**{"If-Match": f'"{version}"'}),
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version + 1
    records = await consume_topic(running.topic, 4)
    assert len({r.partition for r in records}) == 1
    events = [catalog.registry.deserialize_json(r.value) for r in records]
    assert [e.version for e in events] == [1, 2, 3, 4]
    assert [e.event_type for e in events] == ["ProductCreated"] + ["ProductPriceChanged"] * 3
