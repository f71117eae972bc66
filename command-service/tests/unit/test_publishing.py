"""The outbox logic against an in-memory store and a fake sink: nothing is lost on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from tandem.event_store import InMemoryEventStore, commit_id_for
from tandem.runtime.command.publishing import (
    OutboxPublisher,
    OutboxRelay,
    OutgoingCommit,
    cloudevent_headers,
)
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


class _Producer:
    """Stands in for AIOKafkaProducer: the first one's sends fail as after a broker restart."""

    made = 0

    def __init__(self) -> None:
        _Producer.made += 1
        self.number = _Producer.made
        self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: object) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.number == 1:
            from aiokafka.errors import OutOfOrderSequenceNumber

            future.set_exception(OutOfOrderSequenceNumber())
        else:
            self.sent.append(value)
            future.set_result(None)
        return future


async def test_a_producer_whose_sequence_the_broker_lost_is_replaced() -> None:
    """OutOfOrderSequenceNumber never heals on the same idempotent producer: the sink fails the
    publish (the relay retries it) and swaps in a new producer."""
    from tandem.runtime.command.publishing import KafkaEventSink

    class Sink(KafkaEventSink):
        def _new_producer(self) -> _Producer:  # type: ignore[override]
            return _Producer()

        async def ensure_topic(self) -> None:
            return None

    _Producer.made = 0
    sink = Sink("unused:9092", {"Product": "t"}, partitions=1, retry_backoff=0.01)
    await sink.run_connect()
    first = sink._producer
    commit = OutgoingCommit(commit_id_for("p1", 1), (created("p1"),))
    with pytest.raises(Exception, match="OutOfOrderSequenceNumber"):
        await sink.publish([commit])
    await asyncio.wait_for(sink.connected.wait(), 5)
    assert first is not None
    assert first.stopped
    assert sink._producer is not first
    await sink.publish([commit])
    assert len(sink._producer.sent) == 1
    await sink.close()


async def test_the_next_batch_is_sent_while_the_last_one_is_being_marked() -> None:
    store, sink = InMemoryEventStore(), FakeSink()
    marking = asyncio.Event()
    release = asyncio.Event()
    mark = store.mark_published

    async def slow_mark(ids: Any) -> None:
        marking.set()
        await release.wait()
        await mark(ids)

    store.mark_published = slow_mark  # type: ignore[method-assign]
    publisher = OutboxPublisher(sink, store, retry_backoff=0.01)
    task = asyncio.create_task(publisher.run())
    for pid in ("p-1", "p-2"):
        await store.append(created(pid), expected_version=0)
    publisher.submit(OutgoingCommit(commit_id_for("p-1", 1), (created("p-1"),)))
    async with asyncio.timeout(2):
        await marking.wait()
        publisher.submit(OutgoingCommit(commit_id_for("p-2", 1), (created("p-2"),)))
        while True:  # the second batch goes out although the first mark has not returned
            if len(sink.sent) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(await store.list_unpublished()) == 2
        release.set()
        await publisher.drain(timeout=1)
    assert await store.list_unpublished() == []
    task.cancel()
