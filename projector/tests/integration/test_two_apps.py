"""Two apps served by one real ``python -m projector`` process: the catalog and a tiny tally
app declared here (one event, one live fold read model).

Both apps use the same aggregate id on purpose: each read model only ever sees the events of
its own app's declared types, and every change notice names its read model on that read
model's own channel, so neither app can leak into the other.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from projector_helpers import PRODUCTS, Publisher, create_topics, env_for, start_projector, stop
from projector_helpers import wait_until_match as wait_until_catalog_matches
from redis.asyncio import Redis
from tandem.aggregate import AggregateRoot, applies
from tandem.app import (
    AggregateSpec,
    App,
    CommandRoute,
    Document,
    FoldProjection,
    ReadModelSpec,
)
from tandem.event_store.mongo import MongoEventStore
from tandem.events import DomainEvent
from tandem.messages import Command
from tandem.runtime.contract import ChangeNotice, dlq_topic
from tandem.runtime.projector.served import topic_in
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration


# --- the tally app -----------------------------------------------------------------------------


class TallyIncremented(DomainEvent):
    aggregate_type: str = "Tally"
    by: int = 1


class Tally(AggregateRoot):
    count = 0

    @applies(TallyIncremented)
    def _on_incremented(self, event: TallyIncremented) -> None:
        self.count += event.by

    def increment(self, by: int) -> None:
        self._record(TallyIncremented, by=by)


class IncrementTally(Command[None]):
    tally_id: str
    by: int = 1


def fold_tally(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    assert isinstance(event, TallyIncremented)
    count = int((doc or {}).get("count", 0)) + event.by
    return {"id": event.aggregate_id, "count": count, "version": event.version}, {"count": count}


app = App(
    name="tallies",
    aggregates=[
        AggregateSpec(
            Tally,
            events=[TallyIncremented],
            route="/api/tallies",
            id_field="tally_id",
            commands=[
                CommandRoute(
                    IncrementTally, "POST", "/{id}/increment", decide=lambda t, c: t.increment(c.by)
                )
            ],
        )
    ],
    read_models=[
        ReadModelSpec(
            "tallies",
            FoldProjection(fold_tally, [TallyIncremented]),
            route="/api/tallies",
            live=True,
        )
    ],
)
TALLIES = app.read_model("tallies")
HERE = Path(__file__).resolve()


# --- the test ----------------------------------------------------------------------------------


async def _notices(pubsub: Any, until: float) -> list[tuple[str, ChangeNotice]]:
    out = []
    while time.monotonic() < until:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            out.append((channel, ChangeNotice.model_validate_json(message["data"])))
    return out


async def test_one_process_serves_two_apps_and_keeps_them_apart(
    env: Any, redis_client: Redis
) -> None:
    tally_topic = topic_in(app.aggregates[0], env.topic_prefix)
    await create_topics(env.settings.kafka_bootstrap_servers, tally_topic, dlq_topic(tally_topic))
    store = MongoEventStore(env.write_db, app.events_collection, registry=app.registry)
    await store.ensure_indexes()
    tallies = Publisher(store, env.publisher.producer, tally_topic)
    shared_id = str(uuid.uuid4())  # a product and a tally with the same id

    pubsub = redis_client.pubsub()
    await pubsub.subscribe(PRODUCTS.channel, TALLIES.channel)
    process_env = env_for(env, apps=f"tandem_catalog.app:app,{HERE.stem}:app")
    process_env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE.parent.parent), process_env.get("PYTHONPATH", "")]
    )
    projector = start_projector(process_env)
    try:
        await env.publisher.commit(
            [
                ProductCreated(
                    aggregate_id=shared_id,
                    name="p",
                    description="d",
                    price=Decimal("2.00"),
                    category="books",
                )
            ]
        )
        for by in (1, 2, 3):
            tally = Tally(shared_id)
            tally.version = by - 1
            tally.increment(by)
            await tallies.commit(list(tally.pending_events))
        await env.publisher.commit(
            [
                ProductPriceChanged(
                    aggregate_id=shared_id, old_price=Decimal(2), price=Decimal("3.00")
                )
            ]
        )
        deadline = time.monotonic() + 60
        while (
            doc := await env.read_db[TALLIES.collection].find_one({"_id": shared_id})
        ) is None or (doc["version"] < 3):
            assert time.monotonic() < deadline, f"tally not projected: {doc}"
            await asyncio.sleep(0.1)
        assert doc == {"_id": shared_id, "id": shared_id, "count": 6, "version": 3}
        await wait_until_catalog_matches(env.read_db, env.write_db)
        product = await env.read_db[PRODUCTS.collection].find_one({"_id": shared_id})
        assert product is not None
        assert (product["version"], product["price"], "count" in product) == (2, 3.0, False)
        assert await env.read_db[TALLIES.collection].count_documents({}) == 1

        cached = await redis_client.get(TALLIES.cache_key(shared_id))
        assert cached is not None
        assert orjson.loads(cached)["count"] == 6
        product_cache = orjson.loads(await redis_client.get(PRODUCTS.cache_key(shared_id)))
        assert product_cache["version"] == 2

        notices = await _notices(pubsub, time.monotonic() + 2)
        on_tallies = [n for channel, n in notices if channel == TALLIES.channel]
        on_products = [n for channel, n in notices if channel == PRODUCTS.channel]
        assert {n.read_model for n in on_tallies} == {"tallies"}
        assert [(n.id, n.version, n.event_type) for n in on_tallies] == [
            (shared_id, v, "TallyIncremented") for v in (1, 2, 3)
        ]
        assert {n.read_model for n in on_products} == {"products"}
        assert [n.version for n in on_products if n.id == shared_id] == [1, 2]
    finally:
        await pubsub.aclose()
        assert stop(projector) == 0


async def test_a_chosen_read_model_runs_in_its_own_group_on_its_own_topics(env: Any) -> None:
    tally_topic = topic_in(app.aggregates[0], env.topic_prefix)
    await create_topics(env.settings.kafka_bootstrap_servers, tally_topic, dlq_topic(tally_topic))
    store = MongoEventStore(env.write_db, app.events_collection, registry=app.registry)
    await store.ensure_indexes()
    tallies = Publisher(store, env.publisher.producer, tally_topic)
    tally_id = str(uuid.uuid4())
    tally = Tally(tally_id)
    tally.increment(5)
    await tallies.commit(list(tally.pending_events))
    await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=tally_id, name="p", description="", price=Decimal(1), category="x"
            )
        ]
    )
    process_env = env_for(env, apps=f"tandem_catalog.app:app,{HERE.stem}:app")
    del process_env["TANDEM_GROUP_ID"]  # derived from the set
    process_env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE.parent.parent)])
    projector = start_projector(process_env, "--read-models", "tallies")
    group = "tandem-projector.tallies"
    try:
        deadline = time.monotonic() + 60
        while await env.read_db[TALLIES.collection].find_one({"_id": tally_id}) is None:
            assert time.monotonic() < deadline, "tally not projected"
            await asyncio.sleep(0.1)
        admin = AIOKafkaAdminClient(bootstrap_servers=env.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            while True:
                offsets = await admin.list_consumer_group_offsets(group)
                mine = {tp.topic for tp, meta in offsets.items() if meta.offset >= 0}
                if tally_topic in mine or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        assert tally_topic in mine
        assert env.topic not in mine  # the catalog's topic is not this group's
        await asyncio.sleep(1)
        assert await env.read_db[PRODUCTS.collection].count_documents({}) == 0
    finally:
        assert stop(projector) == 0
