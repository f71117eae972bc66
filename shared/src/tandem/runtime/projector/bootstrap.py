"""The projector's one composition root: the apps, what this process serves, clients, the
applier and the consumer.

``__main__`` (run, dlq, rebuild), the benchmark script and the tests build everything here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from tandem.app import App
from tandem.event_store.mongo import MongoEventStore
from tandem.events import EventRegistry
from tandem.projections import ProjectionService
from tandem.runtime.projector.applier import BatchApplier
from tandem.runtime.projector.consumer import ProjectorConsumer
from tandem.runtime.projector.projection import FoldReadModel
from tandem.runtime.projector.rebuild import Rebuilder
from tandem.runtime.projector.served import Served, select
from tandem.runtime.projector.settings import ProjectorSettings
from tandem.runtime.projector.store import Pointer, ensure_indexes
from tandem.runtime.projector.totals import Totals

__all__ = [
    "Clients",
    "ProjectorSettings",
    "build_consumer",
    "clients",
    "kafka_consumer",
    "kafka_producer",
]


@dataclass
class Clients:
    settings: ProjectorSettings
    apps: list[App]
    served: Served
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis

    @property
    def read_db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.settings.mongo_read_db]

    @property
    def write_db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.settings.mongo_write_db]

    def app(self, name: str) -> App:
        return next(app for app in self.apps if app.name == name)

    def event_store(self, app: App) -> MongoEventStore:
        return MongoEventStore(self.write_db, app.events_collection, registry=app.registry)

    def projections(self, app: App) -> ProjectionService:
        """Every fold read model of ``app`` this process serves, registered once; their gaps
        heal from that app's event store.

        A totals read model is not a projection of its own here: it is derived from the same
        fold as its source (see ``tandem.runtime.projector.applier``), so it cannot disagree
        with it.
        """
        service = ProjectionService(event_store=self.event_store(app))
        for part in self.served.parts:
            if part.app.name == app.name:
                for spec in part.folds:
                    service.register_batch_projection(FoldReadModel(spec, self.read_db))
        return service

    @property
    def registries(self) -> dict[str, EventRegistry]:
        """Per subscribed topic, the registry of the app whose events it carries."""
        return {t: p.app.registry for p in self.served.parts for t in p.topics}

    def rebuildable(self) -> list[str]:
        """The fold read models a rebuild can replay (totals stay exact on their own)."""
        return [rm.name for app in self.apps for rm in app.read_models if rm.is_fold]

    def rebuilder(self, name: str, **overrides: Any) -> Rebuilder:
        """The rebuild of fold read model ``name`` (:class:`KeyError` when none has it)."""
        for app in self.apps:
            for spec in app.read_models:
                if spec.name == name and spec.is_fold:
                    service = ProjectionService(event_store=self.event_store(app))
                    service.register_batch_projection(FoldReadModel(spec, self.read_db))
                    s = self.settings
                    options: dict[str, Any] = {
                        "page_size": s.rebuild_page_size,
                        "settle_s": s.rebuild_settle_s,
                        "catchup_margin": s.rebuild_catchup_margin,
                        "redis": self.redis,
                        **overrides,
                    }
                    return Rebuilder(spec, self.read_db, self.event_store(app), service, **options)
        raise KeyError(name)

    def applier(self) -> BatchApplier:
        s = self.settings
        return BatchApplier(
            self.read_db,
            self.served,
            {p.app.name: self.projections(p.app) for p in self.served.parts},
            self.redis,
            cache_ttl_s=s.cache_ttl_s,
            fold_retries=s.fold_retries,
            retry_backoff_s=s.retry_backoff_s,
            redis_retries=s.redis_retries,
        )


@asynccontextmanager
async def clients(
    settings: ProjectorSettings, apps: Sequence[App] | None = None
) -> AsyncIterator[Clients]:
    """``apps`` default to ``settings.load_apps()`` (``TANDEM_APPS``)."""
    loaded = list(apps) if apps is not None else settings.load_apps()
    served = select(loaded, settings)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        yield Clients(settings, loaded, served, mongo, redis)
    finally:
        await redis.aclose()
        await mongo.close()


def kafka_producer(settings: ProjectorSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )


def kafka_consumer(settings: ProjectorSettings, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )


async def ensure_read_models(c: Clients) -> None:
    """Indexes of the served read models (the active collection of each fold, and the totals'
    helpers); idempotent."""
    for part in c.served.parts:
        for spec in part.folds:
            for collection in await Pointer(c.read_db, spec.name).targets():
                await ensure_indexes(c.read_db, collection, spec.indexes)
        for spec in part.totals:
            await Totals(spec, c.read_db).ensure_indexes()


async def build_consumer(
    c: Clients, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> ProjectorConsumer:
    s = c.settings
    await ensure_read_models(c)
    return ProjectorConsumer(
        consumer,
        producer,
        c.applier(),
        c.registries,
        topics=c.served.topics,
        group_id=c.served.group_id,
        batch_size=s.batch_size,
        batch_max_wait_ms=s.batch_max_wait_ms,
        infra_backoff_s=max(s.retry_backoff_s, 0.05),
        infra_backoff_max_s=s.infra_backoff_max_s,
        fold_retries=s.fold_retries,
    )
