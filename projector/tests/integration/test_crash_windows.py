"""A crash between the applier's writes, replayed: the stats still count each change once.

The applier writes the stats deltas, then ``members``, then ``products``; a crash (here: an
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
from projector_helpers import assert_read_models_match
from redis.asyncio import Redis
from tandem.runtime.projector.applier import BatchApplier
from tandem.runtime.projector.bootstrap import clients
from tandem.runtime.projector.messages import Delivery
from tandem.runtime.projector.stats import fold_deltas
from tandem_catalog.contract import product_cache_key
from tandem_catalog.events import ProductCreated, ProductDetailsUpdated, ProductPriceChanged

pytestmark = pytest.mark.integration


class Crash(Exception):
    pass


def _deliveries(topic: str, events: list[Any], first_offset: int) -> list[Delivery]:
    return [
        Delivery(topic, 0, first_offset + i, e.aggregate_id.encode(), e.to_json(), [], event=e)
        for i, e in enumerate(events)
    ]


@pytest.mark.parametrize("crash_before", ["_write_members", "_write_products", "_publish"])
async def test_a_batch_replayed_after_a_crash_counts_each_share_once(
    env: Any, crash_before: str, monkeypatch: pytest.MonkeyPatch, redis_client: Redis
) -> None:
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

        original = getattr(BatchApplier, crash_before)

        async def crash(self: BatchApplier, *args: Any, **kwargs: Any) -> None:
            raise Crash(crash_before)

        monkeypatch.setattr(BatchApplier, crash_before, crash)
        batch = _deliveries(env.topic, second, len(first))
        with pytest.raises(Crash):
            await applier.apply(batch)
        monkeypatch.setattr(BatchApplier, crash_before, original)

        result = await applier.apply(batch)  # the redelivery after the restart
        assert result.failed == {}
        await fold_deltas(env.read_db)
    await assert_read_models_match(env.read_db, env.write_db)
    # Whichever write the crash came before, the cache ends at the read model's version
    # (after a crash before Redis, the replay finds only duplicates and sets it again).
    cached = await redis_client.get(product_cache_key(pid))
    assert cached is not None
    assert (orjson.loads(cached)["version"], orjson.loads(cached)["price"]) == (4, 8.0)
