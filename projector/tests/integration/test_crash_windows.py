"""A crash between the applier's writes, replayed: the stats still count each change once.

The applier writes the stats deltas, then ``members``, then ``products``, then Redis; a crash
(here: an
exception from the next write) leaves the earlier writes in place and the batch is delivered
again. The replay must neither lose nor double-count a share, including when the batch moved a
product from one category to another.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from projector_helpers import PRODUCTS, assert_read_models_match, fold_stats
from redis.asyncio import Redis
from tandem.runtime.projector.applier import BatchApplier
from tandem.runtime.projector.bootstrap import clients
from tandem.runtime.projector.messages import Delivery
from tandem.runtime.projector.projection import FoldReadModel
from tandem.runtime.projector.totals import Totals
from tandem_catalog.events import ProductCreated, ProductDetailsUpdated, ProductPriceChanged

pytestmark = pytest.mark.integration


class Crash(Exception):
    pass


def _deliveries(topic: str, events: list[Any], first_offset: int) -> list[Delivery]:
    return [
        Delivery(topic, 0, first_offset + i, e.aggregate_id.encode(), e.to_json(), [], event=e)
        for i, e in enumerate(events)
    ]


CRASH_POINTS: dict[str, tuple[type[Any], str]] = {
    "members": (Totals, "_write_members"),
    "products": (FoldReadModel, "save"),
    "redis": (BatchApplier, "_publish"),
}


@pytest.mark.parametrize("crash_before", sorted(CRASH_POINTS))
async def test_a_batch_replayed_after_a_crash_counts_each_share_once(
    env: Any, crash_before: str, monkeypatch: pytest.MonkeyPatch, redis_client: Redis
) -> None:
    owner, method = CRASH_POINTS[crash_before]
    pid, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=pid, name="a", description="d", price=Decimal("5.00"), category="A"
            )
        ],
        publish=False,
    )
    first += await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=other, name="b", description="d", price=Decimal("7.00"), category="A"
            )
        ],
        publish=False,
    )
    # One batch that moves ``pid`` from A to B and changes its price twice.
    second = []
    for change in (
        ProductPriceChanged(aggregate_id=pid, old_price=Decimal(5), price=Decimal("6.00")),
        ProductDetailsUpdated(aggregate_id=pid, category="B"),
        ProductPriceChanged(aggregate_id=pid, old_price=Decimal(6), price=Decimal("8.00")),
    ):
        second += await env.publisher.commit([change], publish=False)

    async with clients(env.settings) as c:
        applier: BatchApplier = c.applier()
        await applier.apply(_deliveries(env.topic, first, 0))

        original = getattr(owner, method)

        async def crash(self: Any, *args: Any, **kwargs: Any) -> None:
            raise Crash(crash_before)

        monkeypatch.setattr(owner, method, crash)
        batch = _deliveries(env.topic, second, len(first))
        with pytest.raises(Crash):
            await applier.apply(batch)
        monkeypatch.setattr(owner, method, original)

        result = await applier.apply(batch)  # the redelivery after the restart
        assert result.failed == {}
        await fold_stats(env.read_db)
    await assert_read_models_match(env.read_db, env.write_db)
    # Whichever write the crash came before, the cache ends at the read model's version
    # (after a crash before Redis, the replay finds only duplicates and sets it again).
    cached = await redis_client.get(PRODUCTS.cache_key(pid))
    assert cached is not None
    assert (orjson.loads(cached)["version"], orjson.loads(cached)["price"]) == (4, 8.0)
