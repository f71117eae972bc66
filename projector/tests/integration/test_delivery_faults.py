"""Duplicates, reordering, a gap and a poison message, injected straight into the topic."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from projector_helpers import (
    PRODUCTS,
    STATS,
    assert_read_models_match,
    random_history,
    wait_until_consumed,
    wait_until_match,
)
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from tandem.runtime.contract import cloudevent_headers, dlq_topic
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration


async def test_duplicates_and_reordering_end_equal_to_the_fold(env: Any, projector: Any) -> None:
    rng = random.Random(7)
    sent = []
    for _ in range(20):
        history = random_history(str(uuid.uuid4()), rng, rng.randint(1, 6))
        sent.extend(await env.publisher.commit(history, publish=False))
    replay = sent + rng.sample(sent, 30)  # duplicates
    rng.shuffle(replay)  # reordered deliveries, including later versions first
    await env.publisher.send(replay)
    bootstrap, group = env.settings.kafka_bootstrap_servers, env.settings.group_id
    async with projector(env.settings):
        await wait_until_match(env.read_db, env.write_db)
        await wait_until_consumed(bootstrap, group, env.topic)
        before = _duplicates()
        await env.publisher.send(rng.sample(sent, 20))  # late duplicates change nothing
        # The read model already matches, so waiting for a match would not wait for them:
        # wait until the group has committed past them, then look once.
        await wait_until_consumed(bootstrap, group, env.topic)
        assert _duplicates() - before == 20
        await assert_read_models_match(env.read_db, env.write_db)


def _duplicates() -> float:
    return (
        REGISTRY.get_sample_value("tandem_projector_events_total", {"outcome": "duplicate"}) or 0.0
    )


async def test_gap_is_healed_from_the_event_store_and_cache_and_notice_follow(
    env: Any, projector: Any, redis_client: Redis
) -> None:
    pid = str(uuid.uuid4())
    created = ProductCreated(
        aggregate_id=pid, name="a", description="d", price=Decimal("1.00"), category="books"
    )
    events = await env.publisher.commit([created], publish=False)
    for price in ("2.00", "3.00", "4.00"):
        events += await env.publisher.commit(
            [ProductPriceChanged(aggregate_id=pid, old_price=Decimal(1), price=Decimal(price))],
            publish=False,
        )
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(PRODUCTS.channel)
    await env.publisher.send([events[0], events[3]])  # versions 2 and 3 never arrive
    async with projector(env.settings):
        await wait_until_match(env.read_db, env.write_db)
    cached = orjson.loads(await redis_client.get(PRODUCTS.cache_key(pid)))
    assert cached["version"] == 4
    assert cached["price"] == 4.0
    versions = []
    deadline = asyncio.get_running_loop().time() + 5
    while len(versions) < 4 and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None and orjson.loads(message["data"])["id"] == pid:
            assert orjson.loads(message["data"])["read_model"] == PRODUCTS.name
            versions.append(orjson.loads(message["data"])["version"])
    await pubsub.aclose()
    assert versions == [1, 2, 3, 4]
    assert await env.read_db[f"{STATS.name}_members"].find_one({"_id": pid}) is not None


async def test_poison_goes_to_the_dlq_and_the_partition_keeps_flowing(
    env: Any, projector: Any
) -> None:
    pid = str(uuid.uuid4())
    producer = env.publisher.producer
    partition = 0
    await producer.send_and_wait(env.topic, b"{not json", key=pid.encode(), partition=partition)
    unknown = orjson.dumps({"event_type": "NoSuchEvent", "aggregate_id": pid})
    await producer.send_and_wait(env.topic, unknown, key=pid.encode(), partition=partition)
    later = await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=pid, name="x", description="", price=Decimal("5"), category="tools"
            )
        ],
        publish=False,
    )
    for event in later:  # same partition as the poison
        await producer.send_and_wait(
            env.topic,
            event.to_json(),
            key=pid.encode(),
            partition=partition,
            headers=cloudevent_headers(event),
        )
    async with projector(env.settings):
        await wait_until_match(env.read_db, env.write_db)
    consumer = AIOKafkaConsumer(
        dlq_topic(env.topic),
        bootstrap_servers=env.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        records = [r for part in batch.values() for r in part]
    finally:
        await consumer.stop()
    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in records)
    assert reasons == ["decode_error", "unknown_event_type"]
    headers = dict(records[0].headers)
    assert headers["dlq_original_topic"].decode() == env.topic
    assert headers["dlq_original_partition"] == b"0"
    assert headers["dlq_attempts"] == b"1"
