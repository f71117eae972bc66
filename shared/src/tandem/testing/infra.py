"""pytest fixtures that hand tests real Kafka, MongoDB-wire and Redis servers.

Loaded as a plugin (``pytest_plugins = ["tandem.testing.infra"]``), so users' projects get the
same fixtures as ours. ``TANDEM_INFRA`` picks where the servers come from:

- ``local``: servers already running (``deploy/local/stack.py up`` / ``make stack-up``), found
  through the usual ``TANDEM_*`` URLs;
- ``containers``: throw-away containers from testcontainers (needs a Docker engine);
- ``auto`` (default): containers only when a Docker engine answers, local otherwise.

The interface is identical either way: tests only see URLs and connected clients. A server
that does not answer fails the test session with its name, never a silent skip, because a
skipped integration test is a test that cannot fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis


@dataclass(frozen=True)
class InfraEndpoints:
    """Where the real servers are; the ``TANDEM_*`` values a service under test should use."""

    kind: str
    kafka_bootstrap_servers: str
    mongo_url: str
    redis_url: str

    def as_env(self) -> dict[str, str]:
        return {
            "TANDEM_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "TANDEM_MONGO_URL": self.mongo_url,
            "TANDEM_REDIS_URL": self.redis_url,
        }


def docker_available() -> bool:
    """True when a Docker engine answers (not merely when the client binary exists)."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def _check_reachable(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        pytest.exit(
            f"{name} is not reachable at {host}:{port} ({exc}); start the local servers with "
            "`make stack-up` (or set TANDEM_INFRA=containers with a Docker engine)",
            returncode=3,
        )


def local_endpoints() -> InfraEndpoints:
    eps = InfraEndpoints(
        kind="local",
        kafka_bootstrap_servers=os.environ.get("TANDEM_KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        mongo_url=os.environ.get("TANDEM_MONGO_URL", "mongodb://localhost:27017"),
        redis_url=os.environ.get("TANDEM_REDIS_URL", "redis://localhost:6379/0"),
    )
    kafka_host, _, kafka_port = eps.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    _check_reachable("Kafka", kafka_host, int(kafka_port))
    mongo = urlparse(eps.mongo_url)
    _check_reachable("MongoDB", mongo.hostname or "localhost", mongo.port or 27017)
    redis = urlparse(eps.redis_url)
    _check_reachable("Redis", redis.hostname or "localhost", redis.port or 6379)
    return eps


def _container_endpoints(stack: list[Any]) -> InfraEndpoints:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.redis import RedisContainer

    kafka = KafkaContainer().with_kraft()
    mongo = MongoDbContainer("mongo:7")
    redis = RedisContainer("redis:7")
    for container in (kafka, mongo, redis):
        container.start()
        stack.append(container)
    redis_host = redis.get_container_host_ip()
    return InfraEndpoints(
        kind="containers",
        kafka_bootstrap_servers=kafka.get_bootstrap_server(),
        mongo_url=mongo.get_connection_url(),
        redis_url=f"redis://{redis_host}:{redis.get_exposed_port(6379)}/0",
    )


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraEndpoints]:
    choice = os.environ.get("TANDEM_INFRA", "auto")
    if choice not in {"local", "containers", "auto"}:
        raise pytest.UsageError(f"TANDEM_INFRA must be local, containers or auto, not {choice!r}")
    use_containers = choice == "containers" or (choice == "auto" and docker_available())
    if not use_containers:
        yield local_endpoints()
        return
    started: list[Any] = []
    try:
        yield _container_endpoints(started)
    finally:
        for container in reversed(started):
            container.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: InfraEndpoints) -> str:
    return infra.kafka_bootstrap_servers


@pytest_asyncio.fixture(scope="session")
async def mongo_client(infra: InfraEndpoints) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    await client.admin.command("ping")
    yield client
    await client.close()


@pytest_asyncio.fixture
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database of its own for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest_asyncio.fixture(scope="session")
async def redis_client(infra: InfraEndpoints) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url, decode_responses=False)
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture
def unique_name() -> str:
    """A fresh name for topics, groups, keys and prefixes, so tests never share state."""
    return f"t-{uuid.uuid4().hex[:12]}"
