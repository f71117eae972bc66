"""Raw limits of this machine, measured in the same run with the same client machinery."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne
from redis.asyncio import Redis

from bench.common import percentiles
from bench.loadgen import HttpClients, run_closed
from bench.procs import StackPorts


def product_doc(i: int, tag: str) -> dict[str, Any]:
    """A document shaped like one read-model product (about the size of the real ones)."""
    return {
        "_id": f"{tag}-{i}",
        "id": f"{tag}-{i}",
        "name": f"Bench product {i}",
        "description": "A product written by the benchmark to measure raw limits.",
        "price": 19.99 + i % 100,
        "category": f"cat-{i % 10}",
        "status": "active",
        "version": 1,
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-01T00:00:00+00:00",
    }


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}  # _id comes from the filter


async def bare_fastapi(
    port: int, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    async with HttpClients(concurrency, f"http://127.0.0.1:{port}") as clients:

        async def op(w: int, _i: int) -> bool:
            resp = await clients[w].get("/const")
            return resp.status_code == 200

        result = await run_closed(op, concurrency, duration=duration, warmup=warmup)
    return result.summary()


async def mongo_inserts(
    ports: StackPorts, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        ports.mongo_url, maxPoolSize=concurrency
    )
    try:
        coll = client["bench_raw"][f"inserts_{uuid.uuid4().hex[:8]}"]
        await coll.insert_one({"_id": "warm"})
        tag = uuid.uuid4().hex[:8]

        async def op(_w: int, i: int) -> bool:
            await coll.insert_one(product_doc(i, tag))
            return True

        result = await run_closed(op, concurrency, duration=duration, warmup=warmup)
    finally:
        await client.close()
    return result.summary()


async def mongo_bulk_upserts(ports: StackPorts, docs: int, batch: int) -> dict[str, Any]:
    """``bulk_write`` of ``UpdateOne(upsert=True)`` in batches, one at a time (as a projector
    process applies its batches): docs/s. Half the batches insert, half update existing ids."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ports.mongo_url)
    try:
        coll = client["bench_raw"][f"upserts_{uuid.uuid4().hex[:8]}"]
        await coll.insert_one({"_id": "warm"})
        tag = uuid.uuid4().hex[:8]
        latencies: list[float] = []
        t0 = time.perf_counter()
        for start in range(0, docs, batch):
            # ids repeat every docs/2, so the second half of the run updates existing documents
            ops = [
                UpdateOne(
                    {"_id": f"{tag}-{i % max(1, docs // 2)}"},
                    {"$set": {**_without_id(product_doc(i, tag)), "version": i}},
                    upsert=True,
                )
                for i in range(start, min(docs, start + batch))
            ]
            b0 = time.perf_counter()
            await coll.bulk_write(ops, ordered=False)
            latencies.append(time.perf_counter() - b0)
        seconds = time.perf_counter() - t0
    finally:
        await client.close()
    return {
        "ops": docs,
        "batch": batch,
        "seconds": round(seconds, 3),
        "rate": round(docs / seconds, 1),
        **{f"batch_{k}": v for k, v in percentiles(latencies).items()},
    }


async def kafka_produce_consume(
    ports: StackPorts, messages: int, partitions: int
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=ports.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    value = b'{"event_type":"ProductPriceChanged","price":"19.99",' + b'"x":"' + b"p" * 300 + b'"}'
    headers = [("ce_type", b"ProductPriceChanged"), ("ce_specversion", b"1.0")]
    producer = AIOKafkaProducer(
        bootstrap_servers=ports.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm", key=b"warm")
        t0 = time.perf_counter()
        futures = []
        for i in range(messages):
            key = f"agg-{i % 5000}".encode()
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
        produce_s = time.perf_counter() - t0
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ports.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        t0 = time.perf_counter()
        while got < messages + 1:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch:
                break
            got += sum(len(v) for v in batch.values())
        consume_s = time.perf_counter() - t0
    finally:
        await consumer.stop()
    return {
        "produce": {
            "ops": messages,
            "seconds": round(produce_s, 3),
            "rate": round(messages / produce_s, 1),
        },
        "consume": {"ops": got, "seconds": round(consume_s, 3), "rate": round(got / consume_s, 1)},
    }


async def redis_get(
    ports: StackPorts, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    redis = Redis.from_url(ports.redis_url, max_connections=concurrency)
    try:
        key = f"bench:raw:{uuid.uuid4().hex[:8]}"
        await redis.set(key, b'{"id":"x","name":"Bench product","price":19.99}' * 4, ex=600)

        async def op(_w: int, _i: int) -> bool:
            return await redis.get(key) is not None

        result = await run_closed(op, concurrency, duration=duration, warmup=warmup)
        await redis.delete(key)
    finally:
        await redis.aclose()
    return result.summary()
