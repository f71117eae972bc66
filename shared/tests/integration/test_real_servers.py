"""Smoke tests proving each real server works from Python the way Tandem uses it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

pytestmark = pytest.mark.integration


async def _create_topic(bootstrap: str, topic: str, partitions: int = 2) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def _consume(consumer: AIOKafkaConsumer, count: int, timeout: float = 30.0) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(records)
    return got


async def test_kafka_idempotent_producer_group_and_manual_commit(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.events", f"{unique_name}-group"
    await _create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, value=f"m{i}".encode(), key=b"agg-1")
    finally:
        await producer.stop()

    first = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await first.start()
    try:
        records = await _consume(first, 4)
        # Commit only what was processed: the 4th record's offset + 1 on its partition.
        fourth = records[3]
        tp = TopicPartition(fourth.topic, fourth.partition)
        await first.commit({tp: fourth.offset + 1})
        assert await first.committed(tp) == fourth.offset + 1
    finally:
        await first.stop()

    second = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await second.start()
    try:
        rest = await _consume(second, 6)
    finally:
        await second.stop()
    # Same key, so one partition, in order: the second member resumes exactly after m3.
    assert [r.value for r in rest] == [f"m{i}".encode() for i in range(4, 10)]


async def test_mongo_insert_find_unique_index_and_upsert(
    mongo_db: AsyncDatabase[dict[str, Any]], mongo_client: AsyncMongoClient[dict[str, Any]]
) -> None:
    coll = mongo_db["commits"]
    await coll.create_index([("aggregate_id", 1), ("version", 1)], unique=True)
    await coll.insert_one({"aggregate_id": "a", "version": 1, "events": [{"n": 1}]})
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"aggregate_id": "a", "version": 1, "events": []})
    doc = await coll.find_one({"aggregate_id": "a"})
    assert doc is not None
    assert doc["events"] == [{"n": 1}]

    stats = mongo_db["stats"]
    for _ in range(3):
        await stats.update_one({"_id": "cat"}, {"$inc": {"count": 1}}, upsert=True)
    assert (await stats.find_one({"_id": "cat"}) or {}).get("count") == 3
    assert await coll.count_documents({}) == 1
    assert (await mongo_client.admin.command("ping"))["ok"] == 1.0


async def test_redis_get_set_and_pubsub_round_trip(redis_client: Redis, unique_name: str) -> None:
    await redis_client.set(f"{unique_name}:k", b"v", ex=30)
    assert await redis_client.get(f"{unique_name}:k") == b"v"

    pubsub = redis_client.pubsub()
    await pubsub.subscribe(f"{unique_name}:changes")
    try:
        payload = uuid.uuid4().hex.encode()
        assert await redis_client.publish(f"{unique_name}:changes", payload) == 1
        async with asyncio.timeout(5):
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None:
                    break
        assert msg["data"] == payload
    finally:
        await pubsub.aclose()
