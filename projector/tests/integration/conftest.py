"""A fresh topic, group and pair of databases per test, and an in-process projector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from projector_helpers import Publisher, create_topics
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tandem.event_store.mongo import MongoEventStore
from tandem.runtime.contract import dlq_topic
from tandem.runtime.projector.bootstrap import (
    ProjectorSettings,
    build_consumer,
    clients,
    kafka_consumer,
    kafka_producer,
)
from tandem.runtime.projector.served import topic_in
from tandem_catalog.app import app as catalog


@dataclass
class Env:
    settings: ProjectorSettings
    topic_prefix: str
    topic: str
    read_db: AsyncDatabase[dict[str, Any]]
    write_db: AsyncDatabase[dict[str, Any]]
    publisher: Publisher
    infra_env: dict[str, str]


@pytest_asyncio.fixture
async def env(
    infra: Any, mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> AsyncIterator[Env]:
    prefix = f"{unique_name}."
    topic = topic_in(catalog.aggregates[0], prefix)
    await create_topics(infra.kafka_bootstrap_servers, topic, dlq_topic(topic))
    settings = ProjectorSettings(
        environment="test",
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        mongo_url=infra.mongo_url,
        redis_url=infra.redis_url,
        mongo_write_db=f"{unique_name}_w".replace("-", "_"),
        mongo_read_db=f"{unique_name}_r".replace("-", "_"),
        topic_prefix=prefix,
        group_id=f"{unique_name}-projector",
        batch_max_wait_ms=50,
        batch_size=500,
        retry_backoff_s=0.05,
        rebuild_settle_s=1.0,
    )
    write_db = mongo_client[settings.mongo_write_db]
    read_db = mongo_client[settings.mongo_read_db]
    store = MongoEventStore(write_db, catalog.events_collection, registry=catalog.registry)
    await store.ensure_indexes()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        yield Env(
            settings,
            prefix,
            topic,
            read_db,
            write_db,
            Publisher(store, producer, topic),
            infra.as_env(),
        )
    finally:
        await producer.stop()
        await mongo_client.drop_database(settings.mongo_write_db)
        await mongo_client.drop_database(settings.mongo_read_db)


@asynccontextmanager
async def running_projector(settings: ProjectorSettings) -> AsyncIterator[None]:
    async with clients(settings) as c:
        consumer = kafka_consumer(settings, c.served.group_id)
        producer = kafka_producer(settings)
        await producer.start()
        await consumer.start()
        runner = await build_consumer(c, consumer, producer)
        task = asyncio.create_task(runner.run())
        try:
            yield
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)
            await consumer.stop()
            await producer.stop()


@pytest.fixture
def projector() -> Callable[[ProjectorSettings], Any]:
    return running_projector
