"""Fixtures for the command-service tests: the catalog served on a private database and
topics (a random topic prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from tandem.app import App
from tandem.auth import issue_token
from tandem.event_store import EventStore
from tandem.runtime.command.bootstrap import AppWriter, Service, create_app
from tandem.runtime.command.settings import CommandServiceSettings
from tandem.testing.infra import InfraEndpoints
from tandem_catalog.app import app as catalog

PRODUCTS = catalog.aggregates[0]


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient
    settings: CommandServiceSettings
    token: str

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service

    @property
    def writer(self) -> AppWriter:
        return self.service.writer()

    @property
    def store(self) -> EventStore:
        """The served app's event store (its commits collection is the outbox)."""
        return self.writer.event_store

    @property
    def topic(self) -> str:
        """The topic of the first aggregate type (the catalog's products)."""
        return self.service.topic(self.writer.app.aggregates[0])

    @property
    def events_collection(self) -> str:
        return self.writer.app.events_collection

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


def make_settings(infra: InfraEndpoints | None = None, **overrides: Any) -> CommandServiceSettings:
    name = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "environment": "test",
        "mongo_write_db": f"t_cmd_{name}",
        "mongo_read_db": f"t_cmd_read_{name}",
        "topic_prefix": f"t-cmd-{name}.",
        "partitions": 3,
        "relay_interval_s": 0.5,
        "relay_grace_s": 2.0,
        "retry_backoff_s": 0.5,
        "kafka_request_timeout_ms": 5000,
    }
    if infra is not None:
        values |= {
            "kafka_bootstrap_servers": infra.kafka_bootstrap_servers,
            "mongo_url": infra.mongo_url,
        }
    return CommandServiceSettings(**(values | overrides))


@asynccontextmanager
async def running_app(
    settings: CommandServiceSettings,
    *,
    wait_ready: bool = True,
    apps: list[App] | None = None,
    scopes: tuple[str, ...] = (PRODUCTS.scope,),
) -> AsyncIterator[RunningApp]:
    app = create_app(settings, apps)
    token = issue_token(settings, "tester", list(scopes), 3600)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            running = RunningApp(app, client, settings, token)
            if wait_ready:
                await wait_ready_for(running.service)
            yield running


async def wait_ready_for(service: Service, timeout: float = 30.0) -> None:
    """Indexes created and Kafka connected (the service accepts commands without Kafka, but
    most tests want to see events on the topic)."""
    async with asyncio.timeout(timeout):
        while True:
            if service.gate.ready:
                break
            await asyncio.sleep(0.05)
        await service.sink.connected.wait()


@pytest.fixture
async def app_factory(
    settings_factory: Callable[..., CommandServiceSettings],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[Callable[..., Any]]:
    """``async with app_factory(**settings) as running:`` — its database is dropped after."""
    databases: list[str] = []

    def factory(
        *,
        wait_ready: bool = True,
        apps: list[App] | None = None,
        scopes: tuple[str, ...] = (PRODUCTS.scope,),
        **overrides: Any,
    ) -> Any:
        settings = settings_factory(**overrides)
        databases.append(settings.mongo_write_db)
        return running_app(settings, wait_ready=wait_ready, apps=apps, scopes=scopes)

    yield factory
    for name in databases:
        await mongo_client.drop_database(name)


@pytest.fixture
async def replicas(
    settings_factory: Callable[..., CommandServiceSettings],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[tuple[RunningApp, RunningApp]]:
    """Two command services on one event store, as two replicas of a deployment."""
    settings = settings_factory()
    try:
        async with running_app(settings) as a, running_app(settings) as b:
            yield a, b
    finally:
        await mongo_client.drop_database(settings.mongo_write_db)


@pytest.fixture
async def running(app_factory: Callable[..., Any]) -> AsyncIterator[RunningApp]:
    async with app_factory() as app:
        yield app


@pytest.fixture
def settings_factory(infra: InfraEndpoints) -> Callable[..., CommandServiceSettings]:
    def factory(**overrides: Any) -> CommandServiceSettings:
        return make_settings(infra, **overrides)

    return factory


async def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first ``count`` messages of ``topic`` (from the beginning), or fail after timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout):  # start included: nothing here may wait unbounded
            await consumer.start()
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for partition_records in batch.values():
                    records.extend(partition_records)
    finally:
        await asyncio.wait_for(consumer.stop(), 10)
    return records


@pytest.fixture
def consume_topic(kafka_bootstrap: str) -> Callable[..., Any]:
    """``await consume_topic(topic, count)``: the topic's first messages."""

    async def read(
        topic: str, count: int, timeout: float = 30.0, bootstrap: str | None = None
    ) -> Any:
        return await consume(bootstrap or kafka_bootstrap, topic, count, timeout)

    return read
