"""The projector's one composition root: settings, clients, the applier and the consumer.

``__main__`` (run, dlq, rebuild), the benchmark script and the tests build everything here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import Field
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from tandem_catalog.contract import PRODUCT_TOPIC, PROJECTOR_GROUP
from tandem_catalog.events import CATALOG_REGISTRY

from tandem.event_store.mongo import MongoEventStore
from tandem.events import EventRegistry
from tandem.projections import ProjectionService
from tandem.runtime.projector.applier import BatchApplier
from tandem.runtime.projector.consumer import ProjectorConsumer
from tandem.runtime.projector.projection import ProductsProjection
from tandem.runtime.projector.store import ensure_read_model
from tandem.settings import EnvList, TandemSettings


class ProjectorSettings(TandemSettings):
    """Every tunable of the projector (env ``TANDEM_<FIELD>``); see docs/projector.md."""

    http_port: int = Field(default=8003, ge=0, le=65535)
    group_id: str = PROJECTOR_GROUP
    topics: EnvList = Field(default_factory=lambda: [PRODUCT_TOPIC], min_length=1)
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    fold_retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_s: float = Field(default=0.1, ge=0.0, le=60.0)
    infra_backoff_max_s: float = Field(default=10.0, ge=0.1, le=600.0)
    redis_retries: int = Field(default=3, ge=0, le=20)
    shutdown_grace_s: float = Field(default=20.0, ge=0.0, le=600.0)
    cache_ttl_s: float = Field(default=300.0, gt=0.0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    rebuild_page_size: int = Field(default=2000, ge=1, le=50_000)
    rebuild_settle_s: float = Field(default=5.0, ge=0.0, le=600.0)
    rebuild_catchup_margin: int = Field(default=10_000, ge=0)


@dataclass
class Clients:
    settings: ProjectorSettings
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis
    registry: EventRegistry

    @property
    def read_db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.settings.mongo_read_db]

    @property
    def write_db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.settings.mongo_write_db]

    def event_store(self) -> MongoEventStore:
        return MongoEventStore(self.write_db, registry=self.registry)

    def projections(self) -> ProjectionService:
        """Every projection the projector maintains, registered once; gaps heal from the store.

        ``category_stats`` is not a projection of its own here: it is derived from the same
        fold as ``products`` (see ``projector.applier``), so it cannot disagree with it.
        """
        service = ProjectionService(event_store=self.event_store())
        service.register_batch_projection(ProductsProjection(self.read_db))
        return service

    def applier(self) -> BatchApplier:
        s = self.settings
        return BatchApplier(
            self.read_db,
            self.projections(),
            self.redis,
            cache_ttl_s=s.cache_ttl_s,
            fold_retries=s.fold_retries,
            retry_backoff_s=s.retry_backoff_s,
            redis_retries=s.redis_retries,
        )


@asynccontextmanager
async def clients(settings: ProjectorSettings) -> AsyncIterator[Clients]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        yield Clients(settings, mongo, redis, CATALOG_REGISTRY)
    finally:
        await redis.aclose()
        await mongo.close()


def kafka_producer(settings: ProjectorSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )


def kafka_consumer(settings: ProjectorSettings, group_id: str | None = None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id or settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )


async def build_consumer(
    c: Clients, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> ProjectorConsumer:
    s = c.settings
    await ensure_read_model(c.read_db)
    return ProjectorConsumer(
        consumer,
        producer,
        c.applier(),
        c.registry,
        topics=s.topics,
        batch_size=s.batch_size,
        batch_max_wait_ms=s.batch_max_wait_ms,
        infra_backoff_s=max(s.retry_backoff_s, 0.05),
        infra_backoff_max_s=s.infra_backoff_max_s,
        fold_retries=s.fold_retries,
    )
