"""A second app, declared here, served by the same query service beside the catalog.

A counter with one command, one event and one live fold read model: reads by id,
``min_version`` waits and WebSocket frames are its own, even for an id the catalog also has
(``p1``), because caches, waiters and sockets are per read model.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.aggregate import AggregateRoot, applies
from tandem.app import AggregateSpec, App, CommandRoute, Document, FoldProjection, ReadModelSpec
from tandem.auth import issue_token
from tandem.events import DomainEvent
from tandem.messages import Command
from tandem.runtime.query.testing import notice, running
from tandem_catalog.app import app as catalog
from tandem_catalog.testing import PRODUCTS, product_doc
from websockets.asyncio.client import connect

pytestmark = pytest.mark.integration


class CounterIncremented(DomainEvent):
    by: int = 1


class Increment(Command[None]):
    counter_id: str
    by: int = 1


class Counter(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = 0

    def increment(self, by: int) -> None:
        self._record(CounterIncremented, by=by)

    @applies(CounterIncremented)
    def _incremented(self, event: CounterIncremented) -> None:
        self.total += event.by


def fold_counter(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    assert isinstance(event, CounterIncremented)
    total = (doc or {}).get("total", 0) + event.by
    return {"id": event.aggregate_id, "total": total, "version": event.version}, {"total": total}


counters = App(
    name="counters",
    aggregates=[
        AggregateSpec(
            Counter,
            events=[CounterIncremented],
            route="/api/counters",
            id_field="counter_id",
            commands=[
                CommandRoute(
                    Increment, "POST", "/{id}/increment", decide=lambda c, cmd: c.increment(cmd.by)
                )
            ],
        )
    ],
    read_models=[
        ReadModelSpec(
            "counters",
            FoldProjection(fold_counter, [CounterIncremented]),
            route="/api/counters",
            live=True,
        )
    ],
)
COUNTERS = counters.read_model("counters")


def counter_doc(counter_id: str, version: int, total: int) -> Document:
    return {"_id": counter_id, "id": counter_id, "total": total, "version": version}


async def test_a_second_app_reads_waits_and_streams_without_mixing_with_the_catalog(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings()
    await redis_client.delete(COUNTERS.cache_key("p1"))  # a previous run's cached counter
    db = mongo_client[settings.mongo_read_db]
    await db[PRODUCTS.collection].insert_one(product_doc("p1", 5, price=12.5))
    await db[COUNTERS.collection].insert_one(counter_doc("p1", 1, 1))
    token = issue_token(settings, "reader", [COUNTERS.scope], 60)
    try:
        async with (
            running(settings, [catalog, counters]) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            counter = await http.get("/api/counters/p1")
            assert (counter.status_code, counter.json()) == (
                200,
                {"id": "p1", "total": 1, "version": 1},
            )
            assert counter.headers["ETag"] == '"1"'
            product = await http.get("/api/products/p1")  # both now cached in this process
            assert (product.json()["version"], product.json()["price"]) == (5, 12.5)
            assert "total" not in product.json()

            ws = await connect(url.replace("http://", "ws://") + "/ws/counters")
            await ws.send(json.dumps({"type": "auth", "token": token}))
            subscribed = json.loads(await asyncio.wait_for(ws.recv(), 3))
            assert subscribed["event_types"] == ["CounterIncremented"]

            waiting = asyncio.create_task(http.get("/api/counters/p1", params={"min_version": 2}))
            await asyncio.sleep(0.2)
            # The catalog's p1 moves on: neither the counter's waiter nor its socket hears it.
            await redis_client.publish(
                PRODUCTS.channel, notice(PRODUCTS.name, "p1", 6, "ProductPriceChanged")
            )
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await db[COUNTERS.collection].replace_one({"_id": "p1"}, counter_doc("p1", 2, 3))
            await redis_client.publish(
                COUNTERS.channel,
                notice(COUNTERS.name, "p1", 2, "CounterIncremented", total=3),
            )
            fresh = await asyncio.wait_for(waiting, 5)
            assert (fresh.status_code, fresh.json()["total"]) == (200, 3)

            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            while frame["type"] == "heartbeat":
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame == {
                "type": "change",
                "read_model": "counters",
                "id": "p1",
                "version": 2,
                "event_type": "CounterIncremented",
                "changed_fields": {"total": 3},
                "correlation_id": None,
                "occurred_at": None,
            }
            await ws.close()

            # The catalog's p1 is still the catalog's, from its own cache and read model.
            assert (await http.get("/api/products/p1")).json()["version"] == 5
            assert (await http.get("/api/counters/p1")).json() == {
                "id": "p1",
                "total": 3,
                "version": 2,
            }
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)
