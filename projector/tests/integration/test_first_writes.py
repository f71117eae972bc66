"""New products and stats members are inserted, not upserted: two writers of the same first
batch (a partition's old and new owner during a rebalance) still end with one document each
and each share counted once."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
from projector_helpers import PRODUCTS, STATS, assert_read_models_match, fold_stats
from tandem.runtime.projector.bootstrap import clients
from tandem.runtime.projector.messages import Delivery
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration


async def test_two_writers_of_the_same_first_batch(env: Any) -> None:
    events = []
    for i in range(30):
        pid = str(uuid.uuid4())
        events += await env.publisher.commit(
            [
                ProductCreated(
                    aggregate_id=pid, name=f"p{i}", description="d", price=Decimal(2), category="F"
                )
            ],
            publish=False,
        )
        events += await env.publisher.commit(
            [ProductPriceChanged(aggregate_id=pid, old_price=Decimal(2), price=Decimal(3))],
            publish=False,
        )
    batch = [
        Delivery(env.topic, 0, i, e.aggregate_id.encode(), e.to_json(), [], event=e)
        for i, e in enumerate(events)
    ]
    async with clients(env.settings) as one, clients(env.settings) as other:
        results = await asyncio.gather(one.applier().apply(batch), other.applier().apply(batch))
    assert all(r.failed == {} for r in results)
    assert sum(r.applied for r in results) == 60  # each event applied by exactly one writer
    await fold_stats(env.read_db)
    assert await env.read_db[PRODUCTS.collection].count_documents({"category": "F"}) == 30
    assert await env.read_db[f"{STATS.name}_members"].count_documents({"group": "F"}) == 30
    stats = await env.read_db[STATS.collection].find_one({"_id": "F"})
    assert (stats["active_count"], stats["price_sum_cents"]) == (30, 30 * 300)
    await assert_read_models_match(env.read_db, env.write_db)
