"""The outbox logic against an in-memory store and a fake sink: nothing is lost on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from command_service.publishing import (
    OutboxPublisher,
    OutboxRelay,
    OutgoingCommit,
    cloudevent_headers,
)
from tandem.event_store import InMemoryEventStore, commit_id_for
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.unit


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[OutgoingCommit] = []
        self.failing = False

    async def publish(self, commits: Sequence[OutgoingCommit]) -> None:
        if self.failing:
            raise ConnectionError("kafka down")
        self.sent.extend(commits)


def created(product_id: str) -> ProductCreated:
    return ProductCreated(
        aggregate_id=product_id,
        aggregate_type="Product",
        name="n",
        description="",
        price=Decimal(1),
        category="c",
        correlation_id="cid",
    )


def test_cloudevent_headers() -> None:
    event = created("p-1")
    headers = dict(cloudevent_headers(event))
    assert headers["ce_id"] == event.event_id.encode()
    assert headers["ce_subject"] == headers["partitionkey"] == b"p-1"
    assert headers["ce_correlationid"] == b"cid"
    assert headers["ce_specversion"] == b"1.0"
    no_correlation = dict(cloudevent_headers(event.model_copy(update={"correlation_id": None})))
    assert "ce_correlationid" not in no_correlation


async def test_fast_path_publishes_and_marks() -> None:
    store, sink = InMemoryEventStore(), FakeSink()
    publisher = OutboxPublisher(sink, store, retry_backoff=0.01)
    await store.append(created("p-1"), expected_version=0)
    task = asyncio.create_task(publisher.run())
    publisher.submit(OutgoingCommit(commit_id_for("p-1", 1), (created("p-1"),)))
    async with asyncio.timeout(2):
        while True:
            if not await store.list_unpublished():
                break
            await asyncio.sleep(0.01)
    task.cancel()
    assert len(sink.sent) == 1


async def test_failed_publish_leaves_commits_to_the_relay_in_version_order() -> None:
    store, sink = InMemoryEventStore(), FakeSink()
    sink.failing = True
    publisher = OutboxPublisher(sink, store, retry_backoff=0.01)
    task = asyncio.create_task(publisher.run())
    await store.append(created("p-1"), expected_version=0)
    publisher.submit(OutgoingCommit(commit_id_for("p-1", 1), (created("p-1"),)))
    await store.append(
        ProductPriceChanged(
            aggregate_id="p-1",
            aggregate_type="Product",
            version=2,
            old_price=Decimal(1),
            price=Decimal(2),
        ),
        expected_version=1,
    )
    await asyncio.sleep(0.05)
    task.cancel()
    assert len(await store.list_unpublished()) == 2

    relay = OutboxRelay(sink, store, interval=0.01, grace=timedelta(0))
    with pytest.raises(ConnectionError):
        await relay.run_once()
    sink.failing = False
    assert await relay.run_once() == 2
    assert [e.version for c in sink.sent for e in c.events] == [1, 2]
    assert await store.list_unpublished() == []
