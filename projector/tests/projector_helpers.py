"""Produce events the way the command-service does, and compare read models with a fold.

The fold the read models are compared with is not the projector's: it is the e2e tier's
specification (:mod:`tandem_e2e.fold`, plain Python over the catalog's events) turned into the
documents the read side serves, so a bug in ``projector.products`` cannot hide itself here.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from pymongo.asynchronous.database import AsyncDatabase
from tandem.event_store.mongo import MongoEventStore
from tandem.events import DomainEvent
from tandem.runtime.contract import cloudevent_headers
from tandem.runtime.projector.store import Pointer
from tandem.runtime.projector.totals import Totals
from tandem_catalog.app import app as catalog
from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)
from tandem_e2e.fold import ExpectedProduct, fold_category_stats, fold_products

CATEGORIES = ["books", "games", "tools", "food"]
PRODUCTS = catalog.read_model("products")
STATS = catalog.read_model("category_stats")


async def fold_stats(read_db: AsyncDatabase[dict[str, Any]]) -> int:
    """What the folder process does, once: the logged stats deltas into ``category_stats``."""
    return await Totals(STATS, read_db).fold()


async def create_topics(bootstrap: str, *names: str, partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


def random_history(aggregate_id: str, rng: random.Random, length: int) -> list[DomainEvent]:
    price = Decimal(rng.randint(100, 9999)) / 100
    events: list[DomainEvent] = [
        ProductCreated(
            aggregate_id=aggregate_id,
            name=f"p-{aggregate_id[:6]}",
            description="d",
            price=price,
            category=rng.choice(CATEGORIES),
            correlation_id="corr-1",
        )
    ]
    for _ in range(length - 1):
        kind = rng.random()
        if kind < 0.4:
            new = Decimal(rng.randint(100, 9999)) / 100
            events.append(
                ProductPriceChanged(aggregate_id=aggregate_id, old_price=price, price=new)
            )
            price = new
        elif kind < 0.8:
            events.append(
                ProductDetailsUpdated(
                    aggregate_id=aggregate_id,
                    name=f"n{rng.randint(0, 99)}",
                    category=rng.choice(CATEGORIES),
                )
            )
        else:
            events.append(ProductDiscontinued(aggregate_id=aggregate_id, reason="eol"))
            break
    return events


class Publisher:
    """Writes commits to the event store, then publishes them like the command-service."""

    def __init__(self, store: MongoEventStore, producer: AIOKafkaProducer, topic: str) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.published: list[DomainEvent] = []

    async def commit(self, events: list[DomainEvent], publish: bool = True) -> list[DomainEvent]:
        await self.store.append(events)
        stored = await self.store.get_events(events[0].aggregate_id, 1)
        fresh = stored[-len(events) :]
        if publish:
            await self.send(fresh)
        return fresh

    async def send(self, events: list[DomainEvent]) -> None:
        for event in events:
            await self.producer.send_and_wait(
                self.topic,
                value=event.to_json(),
                key=event.aggregate_id.encode(),
                headers=cloudevent_headers(event),
            )
            self.published.append(event)


def expected_document(product: ExpectedProduct) -> dict[str, Any]:
    """The ``products`` document the read side must hold for ``product``: prices as numbers
    with two decimals, times as ISO 8601 strings."""
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price": float(product.price.quantize(Decimal("0.01"))),
        "category": product.category,
        "status": product.status,
        "version": product.version,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


async def expected_from_store(
    store_db: AsyncDatabase[dict[str, Any]], exclude: Collection[str] = ()
) -> dict[str, ExpectedProduct]:
    """The specification's fold of every event in the store (but the ``exclude``d ids')."""
    store = MongoEventStore(store_db, catalog.events_collection, registry=catalog.registry)
    events = [
        e
        for commit in await store.read_all(limit=10**7)
        for e in commit.events
        if e.aggregate_id not in exclude
    ]
    products, issues = fold_products(sorted(events, key=lambda e: (e.aggregate_id, e.version)))
    assert not issues.version_gaps, issues
    assert not issues.duplicate_event_ids, issues
    assert not issues.orphans, issues
    return products


async def assert_read_models_match(
    read_db: AsyncDatabase[dict[str, Any]],
    write_db: AsyncDatabase[dict[str, Any]],
    exclude: Collection[str] = (),
) -> None:
    products = await expected_from_store(write_db, exclude)
    expected = {pid: expected_document(p) for pid, p in products.items()}
    collection = (await Pointer(read_db, PRODUCTS.name).targets())[0]
    actual = {d.pop("_id"): d async for d in read_db[collection].find({})}
    assert actual == expected
    stats = {d["_id"]: d async for d in read_db["category_stats"].find({})}
    totals = fold_category_stats(products)
    for category in set(stats) | set(totals):
        total = totals.get(category)
        count, cents = (total.active_count, int(total.price_sum * 100)) if total else (0, 0)
        doc = stats.get(category, {"active_count": 0, "price_sum_cents": 0})
        # Integer counters only are stored; the catalog's ``present`` derives the price sum.
        assert (doc.get("active_count", 0), doc.get("price_sum_cents", 0)) == (count, cents), (
            category
        )


async def wait_until_match(
    read_db: AsyncDatabase[dict[str, Any]],
    write_db: AsyncDatabase[dict[str, Any]],
    timeout: float = 60.0,
    exclude: Collection[str] = (),
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await assert_read_models_match(read_db, write_db, exclude)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def committed_offsets(bootstrap: str, group_id: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets, by (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def end_offsets(bootstrap: str, topic: str) -> dict[tuple[str, int], int]:
    """The topic's end offsets now, by (topic, partition)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"no partitions for {topic}"
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def wait_until_consumed(
    bootstrap: str, group_id: str, topic: str, timeout: float = 60
) -> None:
    """Until the group has committed everything on ``topic`` so far: every record up to now was
    consumed and (the projector commits only after applying) applied or dead-lettered."""
    target = {tp: offset for tp, offset in (await end_offsets(bootstrap, topic)).items() if offset}
    deadline = time.monotonic() + timeout
    while True:
        committed = await committed_offsets(bootstrap, group_id)
        behind = {tp: end for tp, end in target.items() if committed.get(tp, -1) < end}
        if not behind:
            return
        assert time.monotonic() < deadline, f"not consumed: {behind}, committed {committed}"
        await asyncio.sleep(0.2)


def projector_env(infra_env: dict[str, str], **values: str) -> dict[str, str]:
    env = {**os.environ, **infra_env, "TANDEM_ENVIRONMENT": "test", "TANDEM_HTTP_PORT": "0"}
    env.update({f"TANDEM_{k.upper()}": v for k, v in values.items()})
    return env


def env_for(env: Any, **values: str) -> dict[str, str]:
    """``projector_env`` for a test environment fixture: its databases, group and topics."""
    s = env.settings
    return projector_env(
        env.infra_env,
        mongo_write_db=s.mongo_write_db,
        mongo_read_db=s.mongo_read_db,
        group_id=s.group_id,
        topic_prefix=env.topic_prefix,
        **values,
    )


def start_projector(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "projector", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=timeout)
