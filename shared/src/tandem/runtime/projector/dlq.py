"""Dead letters: list them, and replay them onto their original topic.

A replay republishes the original key, value and CloudEvents headers; the event then flows
through the normal path (duplicates skipped, gaps healed). The replay tool commits its position
in its own consumer group (``<group>.dlq-replay``), so a dead letter is replayed once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tandem.events import EventRegistry
from tandem.runtime.projector.messages import decode, header, without_dlq_headers


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: str | None
    reason: str
    error: str
    original: str
    attempts: int
    headers: list[tuple[str, bytes]]
    value: bytes | None
    event: str = ""
    """``<event type> v<version>`` as the app's registry decodes it, or why it cannot."""

    def describe(self) -> str:
        return (
            f"{self.partition}@{self.offset} key={self.key} from={self.original} "
            f"event={self.event} reason={self.reason} attempts={self.attempts} "
            f"error={self.error}"
        )


def _text(headers: list[tuple[str, bytes]], name: str) -> str:
    raw = header(headers, name)
    return raw.decode(errors="replace") if raw else ""


def _letter(record: Any, registry: EventRegistry) -> DeadLetter:
    headers = [(k, bytes(v or b"")) for k, v in (record.headers or ())]
    delivery = decode(record, registry)
    if delivery.event is not None:
        event = f"{delivery.event.event_type} v{delivery.event.version}"
    else:
        event = f"undecodable ({delivery.reason})"
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key else None,
        reason=_text(headers, "dlq_reason"),
        error=_text(headers, "dlq_error"),
        original=(
            f"{_text(headers, 'dlq_original_topic')}[{_text(headers, 'dlq_original_partition')}]"
            f"@{_text(headers, 'dlq_original_offset')}"
        ),
        attempts=int(_text(headers, "dlq_attempts") or 0),
        headers=headers,
        value=record.value,
        event=event,
    )


async def _drain(consumer: AIOKafkaConsumer, idle_ms: int = 1500) -> list[Any]:
    records: list[Any] = []
    while True:
        batch = await consumer.getmany(timeout_ms=idle_ms, max_records=5000)
        if not batch:
            return records
        for part in batch.values():
            records.extend(part)


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        int(p["partition"])
        for t in described
        if t.get("error_code", 0) == 0
        for p in t.get("partitions", ())
    ]


async def list_dead_letters(bootstrap: str, dlq: str, registry: EventRegistry) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await _partitions(bootstrap, dlq)
        tps = [TopicPartition(dlq, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return [_letter(r, registry) for r in await _drain(consumer)]
    finally:
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    # aiokafka 0.14's group-less coordinator re-raises the CancelledError of its own
    # background task on close; that is not a cancellation of ours.
    with contextlib.suppress(asyncio.CancelledError):
        await consumer.stop()


async def replay_dead_letters(
    bootstrap: str, dlq: str, group_id: str, registry: EventRegistry
) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        dlq,
        bootstrap_servers=bootstrap,
        group_id=f"{group_id}.dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await asyncio.gather(consumer.start(), producer.start())
    try:
        records = await _drain(consumer, idle_ms=3000)
        letters = [_letter(r, registry) for r in records]
        futures = []
        for letter in letters:
            topic = _text(letter.headers, "dlq_original_topic")
            futures.append(
                await producer.send(
                    topic,
                    value=letter.value,
                    key=letter.key.encode() if letter.key is not None else None,
                    headers=without_dlq_headers(letter.headers),
                )
            )
        await asyncio.gather(*futures)
        if records:
            await consumer.commit()
        return letters
    finally:
        await asyncio.gather(consumer.stop(), producer.stop())
