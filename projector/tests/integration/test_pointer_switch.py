"""The applier reads products from the collection it last wrote, beside the pointer; after a
rebuild's switch it must notice and read the new live collection, not fold on stale state."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from projector_helpers import PRODUCTS
from tandem.runtime.projector.bootstrap import clients
from tandem.runtime.projector.messages import Delivery
from tandem.runtime.projector.store import Pointer
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration


def _deliveries(topic: str, events: list[Any], first_offset: int) -> list[Delivery]:
    return [
        Delivery(topic, 0, first_offset + i, e.aggregate_id.encode(), e.to_json(), [], event=e)
        for i, e in enumerate(events)
    ]


async def test_a_switched_pointer_is_followed_from_the_next_batch(env: Any) -> None:
    pid = str(uuid.uuid4())
    events = await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=pid, name="a", description="d", price=Decimal(5), category="A"
            )
        ],
        publish=False,
    )
    for price in ("6.00", "7.00"):
        events += await env.publisher.commit(
            [ProductPriceChanged(aggregate_id=pid, old_price=Decimal(5), price=Decimal(price))],
            publish=False,
        )
    rebuilt = f"{PRODUCTS.name}_v2"
    async with clients(env.settings) as c:
        stale = c.applier()
        await stale.apply(_deliveries(env.topic, events[:1], 0))
        # A rebuild filled ``rebuilt`` one event further and switched to it.
        await Pointer(env.read_db, PRODUCTS.name).update({"active": rebuilt})
        await c.applier().apply(_deliveries(env.topic, events[:2], 0))
        assert (await env.read_db[rebuilt].find_one({"_id": pid}))["version"] == 2

        result = await stale.apply(_deliveries(env.topic, events[2:], 2))

    assert (result.applied, result.healed, result.failed) == (1, 0, {})
    doc = await env.read_db[rebuilt].find_one({"_id": pid})
    assert (doc["version"], doc["price"]) == (3, 7.0)
    old = await env.read_db[PRODUCTS.name].find_one({"_id": pid})
    assert old["version"] == 1  # the old collection is no longer written
