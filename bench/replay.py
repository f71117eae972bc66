"""(c) Projector replay: pre-load events into the event store and the topic, then time one
(and then two) projector processes applying them all.

The pre-load writes commit documents in ``MongoEventStore``'s shape with ``insert_many`` and
produces the same events (CloudEvents binary mode) straight to a fresh topic, so it takes
seconds, not a command per event. Each run uses a fresh topic, consumer group and read
database, so runs never see each other's offsets or documents. "Done" is the consumer group's
committed offsets reaching the topic's end offsets (the projector commits only after the
effects are durable), checked every 0.2 s; the read model is then counted as a cross-check.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import AsyncMongoClient
from tandem.event_store.protocol import commit_id_for
from tandem.events import DomainEvent
from tandem.runtime.contract import cloudevent_headers
from tandem_catalog.app import app as catalog
from tandem_catalog.events import ProductCreated, ProductPriceChanged

from bench.common import CpuMeter, free_port
from bench.procs import Proc, StackPorts, release_env

EVENTS_PER_PRODUCT = 5


def make_events(n_events: int, tag: str) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    products = max(1, n_events // EVENTS_PER_PRODUCT)
    for p in range(products):
        pid = f"{tag}-{p}"
        price = Decimal("10.00")
        events.append(
            ProductCreated(
                aggregate_id=pid,
                version=1,
                name=f"Replay {p}",
                description="replayed",
                price=price,
                category=f"replay-{p % 10}",
            )
        )
        for v in range(2, EVENTS_PER_PRODUCT + 1):
            new = price + Decimal("1.25")
            events.append(
                ProductPriceChanged(aggregate_id=pid, version=v, old_price=price, price=new)
            )
            price = new
    return events[:n_events]


async def preload(
    ports: StackPorts, events: list[DomainEvent], topic: str, write_db: str, partitions: int
) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    t0 = time.perf_counter()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ports.mongo_url)
    try:
        coll = mongo[write_db][catalog.events_collection]
        now = datetime.now(UTC)
        docs = [
            {
                "_id": commit_id_for(e.aggregate_id, e.version),
                "aggregate_id": e.aggregate_id,
                "aggregate_type": e.aggregate_type,
                "version": e.version,
                "last_version": e.version,
                "position": i + 1,
                "events": [e.to_dict()],
                "published": True,
                "committed_at": now,
            }
            for i, e in enumerate(events)
        ]
        for start in range(0, len(docs), 2000):
            await coll.insert_many(docs[start : start + 2000], ordered=False)
    finally:
        await mongo.close()
    t1 = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=ports.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=ports.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, e.to_json(), key=e.aggregate_id.encode(), headers=cloudevent_headers(e)
            )
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    t2 = time.perf_counter()
    return {"mongo_s": round(t1 - t0, 2), "kafka_s": round(t2 - t1, 2)}


async def group_lag(ports: StackPorts, topic: str, group: str, partitions: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=ports.kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=ports.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return sum(
            ends[tp]
            - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp in tps
        )
    finally:
        await consumer.stop()
        await admin.close()


async def replay(
    ports: StackPorts, n_events: int, processes: int, partitions: int = 12, timeout: float = 900
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    topic, group = f"bench.replay.{run}", f"bench-replay-{run}"
    write_db, read_db = f"bench_rw_{run}", f"bench_rr_{run}"
    events = make_events(n_events, f"r{run}")
    load = await preload(ports, events, topic, write_db, partitions)
    procs = []
    for i in range(processes):
        port = free_port()
        env = release_env(
            ports,
            port,
            TANDEM_MONGO_WRITE_DB=write_db,
            TANDEM_MONGO_READ_DB=read_db,
            TANDEM_GROUP_ID=group,
            TANDEM_TOPICS=json.dumps([topic]),
            TANDEM_PARTITIONS=str(partitions),
        )
        procs.append(
            Proc(f"projector-replay-{processes}-{i}", [_python(), "-m", "projector"], env, port)
        )
    t_start = time.perf_counter()
    for p in procs:
        p.start()
    cpu = CpuMeter({p.name: p.pid for p in procs})
    t_first: float | None = None
    lag = len(events)
    try:
        cpu.start()
        while time.perf_counter() - t_start < timeout:
            if not all(p.alive() for p in procs):
                raise RuntimeError(f"a replay projector exited; see {procs[0].log_path}")
            try:
                lag = await group_lag(ports, topic, group, partitions)
            except Exception:
                lag = len(events)
            if t_first is None and lag < len(events):
                t_first = time.perf_counter()
            if lag <= 0:
                break
            await asyncio.sleep(0.2)
        t_done = time.perf_counter()
        cpu_pct = cpu.stop()
    finally:
        for p in procs:
            p.stop()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ports.mongo_url)
    try:
        applied = await mongo[read_db]["products"].count_documents({"version": EVENTS_PER_PRODUCT})
    finally:
        await mongo.close()
    elapsed = t_done - (t_first or t_start)
    done = n_events - max(0, lag)
    return {
        "events": n_events,
        "processes": processes,
        "applied_events": done,
        "products_at_final_version": applied,
        "seconds_from_first_commit": round(elapsed, 3),
        "seconds_from_spawn": round(t_done - t_start, 3),
        "rate": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        "rate_per_process": round(done / elapsed / processes, 1) if elapsed > 0 else 0.0,
        "preload": load,
        "cpu_pct": cpu_pct,
    }


def _python() -> str:
    import sys

    return sys.executable
