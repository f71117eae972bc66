"""Outages: MongoDB unreachable gives 503 and writes nothing; Kafka down delays, never loses.

The shared servers are never stopped: MongoDB is reached through a proxy this test can cut,
and Kafka is a private broker started with ``deploy/local/stack.py`` on other ports.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from tandem.testing.infra import InfraEndpoints
from tandem.testing.proxy import TcpProxy
from tandem_catalog.app import app as catalog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BODY = {"name": "Desk", "price": "10.00", "category": "furniture"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_mongodb_unreachable_gives_503_with_retry_after_and_writes_nothing(
    app_factory: Any, infra: InfraEndpoints, mongo_client: Any
) -> None:
    mongo = urlparse(infra.mongo_url)
    proxy = TcpProxy(mongo.hostname or "localhost", mongo.port or 27017, _free_port())
    await proxy.start()
    url = f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true"
    async with app_factory(mongo_url=url, mongo_timeout_ms=1000) as running:
        ok = await running.client.post("/api/products", json=BODY, headers=running.headers())
        assert ok.status_code == 201
        product_id = ok.json()["id"]
        await proxy.stop()

        down = await running.client.post(
            "/api/products", json={**BODY, "product_id": "while-down"}, headers=running.headers()
        )
        assert down.status_code == 503
        assert down.headers["retry-after"] == "2"
        assert down.json()["error"]["code"] == "event_store_unavailable"
        update = await running.client.post(
            f"/api/products/{product_id}/price", json={"price": 3}, headers=running.headers()
        )
        assert update.status_code == 503
        keyed = await running.client.post(
            "/api/products", json=BODY, headers=running.headers(**{"Idempotency-Key": "k"})
        )
        assert keyed.status_code == 503
        assert "retry-after" in keyed.headers
        ready = await running.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["mongodb"].startswith("down")
        assert ready.json()["checks"]["kafka"] == "ok"

        events = mongo_client[running.settings.mongo_write_db][running.events_collection]
        assert await events.count_documents({"aggregate_id": "while-down"}) == 0
        assert await events.count_documents({"aggregate_id": product_id}) == 1

        await proxy.start()  # MongoDB is back: so is the service
        again = await running.client.post("/api/products", json=BODY, headers=running.headers())
        assert again.status_code == 201
        await proxy.stop()


async def test_commands_are_503_service_starting_until_the_event_store_indexes_exist(
    app_factory: Any, infra: InfraEndpoints, mongo_client: Any
) -> None:
    """MongoDB is unreachable at start-up (the proxy is not listening yet), so the unique index
    cannot be created: commands are refused, and accepted once it exists."""
    mongo = urlparse(infra.mongo_url)
    proxy = TcpProxy(mongo.hostname or "localhost", mongo.port or 27017, _free_port())
    url = f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true"
    async with app_factory(mongo_url=url, mongo_timeout_ms=500, wait_ready=False) as running:
        starting = await running.client.post(
            "/api/products", json={**BODY, "product_id": "too-early"}, headers=running.headers()
        )
        assert starting.status_code == 503, starting.text
        assert starting.json()["error"]["code"] == "service_starting"
        assert "retry-after" in starting.headers
        ready = await running.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["mongodb"].startswith("down")

        await proxy.start()
        async with asyncio.timeout(30):
            while True:
                if (await running.client.get("/readyz")).json()["checks"]["mongodb"] == "ok":
                    break
                await asyncio.sleep(0.1)
        accepted = await running.client.post(
            "/api/products", json={**BODY, "product_id": "in-time"}, headers=running.headers()
        )
        assert accepted.status_code == 201, accepted.text
        events = mongo_client[running.settings.mongo_write_db][running.events_collection]
        assert await events.count_documents({"aggregate_id": "too-early"}) == 0
        assert await events.count_documents({"aggregate_id": "in-time"}) == 1
        await proxy.stop()


def _stack(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "deploy/local/stack.py"), *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def private_kafka(tmp_path: Path) -> Any:
    port = _free_port()
    env = {
        "TANDEM_STACK_DIR": str(tmp_path / "stack"),
        "TANDEM_KAFKA_PORT": str(port),
        "TANDEM_KAFKA_CONTROLLER_PORT": str(_free_port()),
    }
    _stack(env, "up", "kafka")
    try:
        yield env, f"127.0.0.1:{port}"
    finally:
        _stack(env, "down", "kafka")


async def test_kafka_down_commands_still_201_and_events_arrive_after_restart(
    app_factory: Any, private_kafka: Any, consume_topic: Any
) -> None:
    env, bootstrap = private_kafka
    async with app_factory(
        kafka_bootstrap_servers=bootstrap,
        relay_grace_s=1.0,
        relay_interval_s=0.5,
        kafka_request_timeout_ms=3000,
    ) as running:
        first = await running.client.post("/api/products", json=BODY, headers=running.headers())
        assert first.status_code == 201
        await consume_topic(running.topic, 1, bootstrap=bootstrap)

        await asyncio.to_thread(_stack, env, "down", "kafka")
        ids = []
        for i in range(5):
            response = await running.client.post(
                "/api/products",
                json={**BODY, "name": f"during outage {i}"},
                headers=running.headers(),
            )
            assert response.status_code == 201
            ids.append(response.json()["id"])
        ready = await running.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"].startswith("down")
        await asyncio.sleep(1.5)  # let the fast path fail and the relay try
        assert len(await running.store.list_unpublished()) >= 1

        await asyncio.to_thread(_stack, env, "up", "kafka")
        records = await consume_topic(running.topic, 6, timeout=90, bootstrap=bootstrap)
        published = {catalog.registry.deserialize_json(r.value).aggregate_id for r in records}
        assert set(ids) <= published
        async with asyncio.timeout(30):
            while True:
                if not await running.store.list_unpublished():
                    break
                await asyncio.sleep(0.2)
