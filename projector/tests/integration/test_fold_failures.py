"""An event whose fold keeps raising: retried with exponential backoff, then dead-lettered as
``projection_failed`` while its partition keeps flowing; once fixed, a replay applies it."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from projector_helpers import wait_until_match
from tandem.events import DomainEvent
from tandem.runtime.contract import cloudevent_headers, dlq_topic
from tandem.runtime.projector.dlq import replay_dead_letters
from tandem.runtime.projector.projection import FoldReadModel
from tandem_catalog.app import app as catalog
from tandem_catalog.events import ProductCreated

pytestmark = pytest.mark.integration

FOLD_RETRIES = 4
BACKOFF_S = 0.037  # distinct from every other delay in the process (infra backoff: 0.05)


def _created(name: str) -> ProductCreated:
    return ProductCreated(
        aggregate_id=str(uuid.uuid4()),
        name=name,
        description="",
        price=Decimal("3.50"),
        category="tools",
    )


async def _send_to_partition_0(env: Any, event: DomainEvent) -> int:
    metadata = await env.publisher.producer.send_and_wait(
        env.topic,
        event.to_json(),
        key=event.aggregate_id.encode(),
        partition=0,
        headers=cloudevent_headers(event),
    )
    return int(metadata.offset)


async def _dead_letters(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for part in batch.values() for r in part]
    finally:
        await consumer.stop()
    return records


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return -1 if meta is None else int(meta.offset)


async def test_a_fold_that_keeps_raising_is_dead_lettered_after_backoff(
    env: Any, projector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, poisoned, after = [
        (await env.publisher.commit([_created(name)], publish=False))[0]
        for name in ("before", "poisoned", "after")
    ]
    # (what happened, seconds): the fold's attempts and the backoffs asked of the clock,
    # in order. The delays requested are checked, not measured gaps, which a loaded machine
    # would only stretch.
    timeline: list[tuple[str, float]] = []
    fold = FoldReadModel.fold
    sleep = asyncio.sleep

    def failing(self: FoldReadModel, state: Any, event: DomainEvent) -> Any:
        if event.aggregate_id == poisoned.aggregate_id:
            timeline.append(("attempt", 0.0))
            raise ValueError("projection bug")
        return fold(self, state, event)

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        steps = delay / BACKOFF_S  # a backoff is a whole number of BACKOFF_S
        if (
            timeline
            and timeline[-1][0] == "attempt"
            and steps >= 1
            and abs(steps - round(steps)) < 1e-6
        ):
            timeline.append(("backoff", delay))  # the wait after a failed attempt
        return await sleep(delay, result)

    monkeypatch.setattr(FoldReadModel, "fold", failing)
    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    # All on partition 0: one before the poisoned event, one after it in the same partition.
    offsets = [await _send_to_partition_0(env, e) for e in (before, poisoned, after)]
    settings = env.settings.model_copy(
        update={"fold_retries": FOLD_RETRIES, "retry_backoff_s": BACKOFF_S}
    )
    bootstrap = settings.kafka_bootstrap_servers
    tp = TopicPartition(env.topic, 0)
    async with projector(settings):
        [letter] = await _dead_letters(bootstrap, dlq_topic(env.topic), 1)
        await wait_until_match(env.read_db, env.write_db, exclude={poisoned.aggregate_id})
        # An event sent after the dead letter, still on partition 0, is applied too.
        [later] = await env.publisher.commit([_created("later")], publish=False)
        offsets.append(await _send_to_partition_0(env, later))
        await wait_until_match(env.read_db, env.write_db, exclude={poisoned.aggregate_id})
        deadline = time.monotonic() + 30
        while await _committed(bootstrap, settings.group_id, tp) != offsets[-1] + 1:
            assert time.monotonic() < deadline, "partition 0 was not committed past the letter"
            await asyncio.sleep(0.2)

        # The first try and FOLD_RETRIES retries, each after a backoff twice the last.
        monkeypatch.setattr(asyncio, "sleep", sleep)
        expected = [("attempt", 0.0)]
        for i in range(FOLD_RETRIES):
            expected += [("backoff", pytest.approx(BACKOFF_S * 2**i)), ("attempt", 0.0)]
        assert timeline == expected
        headers = dict(letter.headers)
        assert headers["dlq_reason"] == b"projection_failed"
        assert headers["dlq_error"] == b"ValueError: projection bug"
        assert headers["dlq_original_topic"] == env.topic.encode()
        assert headers["dlq_original_partition"] == b"0"
        assert headers["dlq_original_offset"] == str(offsets[1]).encode()
        assert headers["dlq_attempts"] == str(FOLD_RETRIES + 1).encode()
        assert headers["ce_id"] == poisoned.event_id.encode()  # the original headers travel
        assert (letter.key, letter.value) == (poisoned.aggregate_id.encode(), poisoned.to_json())
        assert await env.read_db["products"].find_one({"_id": poisoned.aggregate_id}) is None

        # The bug is fixed; the replayed dead letter takes the normal path.
        monkeypatch.setattr(FoldReadModel, "fold", fold)
        replayed = await replay_dead_letters(
            bootstrap, dlq_topic(env.topic), settings.group_id, catalog.registry
        )
        assert len(replayed) == 1
        await wait_until_match(env.read_db, env.write_db)
    assert [kind for kind, _ in timeline].count("attempt") == FOLD_RETRIES + 1  # none more
