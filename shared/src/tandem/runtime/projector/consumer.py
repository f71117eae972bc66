"""The consumer group loop: fetch a batch, apply it, dead-letter what cannot apply, commit.

Offsets are committed only after the batch's read-model writes returned and its dead letters
were acknowledged by Kafka (acks=all), so a crash at any point replays work (idempotent) and
never loses it. Infrastructure errors (MongoDB down) retry the same batch with exponential
backoff and do not commit; per-event failures are retried inside the applier, then
dead-lettered, and the partition keeps flowing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pymongo.errors import PyMongoError

from tandem.events import EventRegistry
from tandem.runtime.contract import dlq_topic
from tandem.runtime.projector import metrics
from tandem.runtime.projector.applier import BatchApplier
from tandem.runtime.projector.messages import Delivery, dead_letter_headers, decode
from tandem.runtime.projector.store import WriteConflict

logger = logging.getLogger(__name__)

TOTALS_FOLD_INTERVAL_S = 0.25
"""Least time between two folds of the totals deltas. A fold is a few reads and one update per
group touched, contending with the document writes on the freshness path; at 0.05 s they were
~20 folds a second under load, at 0.25 s four, and a totals read model lags its source by at
most this much more."""


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revoked partition's in-flight batch finishes and commits before it moves away."""

    def __init__(self, runner: ProjectorConsumer) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.runner.batch_lock:  # waits for the batch being applied, if any
            await self.runner.commit_pending(revoked)
        async with self.runner.totals_lock:  # and for a fold in flight: one folder at a time
            pass
        logger.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        logger.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))


class ProjectorConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        applier: BatchApplier,
        registries: Mapping[str, EventRegistry],
        *,
        topics: Sequence[str],
        group_id: str = "",
        batch_size: int = 1000,
        batch_max_wait_ms: int = 200,
        infra_backoff_s: float = 0.5,
        infra_backoff_max_s: float = 10.0,
        fold_retries: int = 3,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.applier = applier
        self.registries = registries
        self.topics = list(topics)
        self.group_id = group_id
        self.batch_size = batch_size
        self.batch_max_wait_ms = batch_max_wait_ms
        self.infra_backoff_s = infra_backoff_s
        self.infra_backoff_max_s = infra_backoff_max_s
        self.fold_retries = fold_retries
        self.batch_lock = asyncio.Lock()
        self.totals_lock = asyncio.Lock()
        self._totals_due = asyncio.Event()
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()
        self._pending: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Consume until :meth:`stop`; then finish the batch in hand, commit and leave.

        The totals fold runs beside the batch loop, not in it: it is not on the path from an
        event to its read model and notice, so a batch never waits for it.
        """
        self.consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        self.started.set()
        folder = asyncio.create_task(self._totals_loop())
        try:
            while not self.stopping.is_set():
                batches = await self.consumer.getmany(
                    timeout_ms=self.batch_max_wait_ms, max_records=self.batch_size
                )
                records = [record for part in batches.values() for record in part]
                if folder.done():
                    folder.result()  # a fold that raised what it does not retry stops the run
                self._totals_due.set()
                if not records:
                    continue
                async with self.batch_lock:
                    # A rebalance may have run between the fetch and the lock: records of
                    # partitions now owned by another member are theirs to apply.
                    assigned = self.consumer.assignment()
                    records = [
                        r for r in records if TopicPartition(r.topic, r.partition) in assigned
                    ]
                    if records:
                        await self._process(records)
                    await self.commit_pending()
                self._totals_due.set()
                self._update_lag(batches)
        finally:
            async with self.batch_lock:
                await self.commit_pending()
            async with self.totals_lock:  # a fold in flight finishes; then the folder stops
                folder.cancel()
            await asyncio.gather(folder, return_exceptions=True)

    async def _totals_loop(self) -> None:
        while True:
            await self._totals_due.wait()
            self._totals_due.clear()
            async with self.totals_lock:
                await self._fold_totals()
            await asyncio.sleep(TOTALS_FOLD_INTERVAL_S)

    async def _fold_totals(self) -> None:
        """Only the owner of partition 0 of its source's first topic folds a totals read
        model: one folder each, so no two processes update a totals document at once."""
        assigned = self.consumer.assignment()
        for target, totals in self.applier.totals:
            if TopicPartition(next(iter(target.part.topics)), 0) not in assigned:
                continue
            try:
                await totals.fold()
            except (PyMongoError, OSError, WriteConflict) as exc:
                metrics.RETRIES.labels("totals_fold").inc()
                logger.warning("folding %s failed, retried next batch: %r", totals.spec.name, exc)

    def stop(self) -> None:
        self.stopping.set()

    async def _process(self, records: list[Any]) -> None:
        deliveries = [decode(record, self.registries[record.topic]) for record in records]
        metrics.BATCH_SIZE.observe(len(deliveries))
        poison = [d for d in deliveries if d.event is None]
        good = [d for d in deliveries if d.event is not None]
        delay = self.infra_backoff_s
        while True:
            try:
                result = await self.applier.apply(good)
                break
            except (PyMongoError, OSError) as exc:  # the servers, not the events: never DLQ
                metrics.RETRIES.labels("infrastructure").inc()
                logger.warning("batch failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.infra_backoff_max_s)
        failed = result.failed_deliveries(good)
        letters = [(d, d.reason or "decode_error", d.error or "", 1) for d in poison]
        letters += [
            (d, "projection_failed", result.error_of(d), self.fold_retries + 1) for d in failed
        ]
        await self._dead_letter(letters)
        metrics.EVENTS.labels("applied").inc(result.applied)
        metrics.EVENTS.labels("duplicate").inc(result.duplicates)
        metrics.EVENTS.labels("healed").inc(result.healed)
        metrics.EVENTS.labels("dead_lettered").inc(len(letters))
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._pending[tp] = max(self._pending.get(tp, -1), record.offset + 1)

    async def _dead_letter(self, letters: list[tuple[Delivery, str, str, int]]) -> None:
        if not letters:
            return
        futures = []
        for delivery, reason, error, attempts in letters:
            logger.error(
                "dead-lettering %s[%d]@%d: %s: %s",
                delivery.topic,
                delivery.partition,
                delivery.offset,
                reason,
                error,
            )
            futures.append(
                await self.producer.send(
                    dlq_topic(delivery.topic),
                    value=delivery.value,
                    key=delivery.key,
                    headers=dead_letter_headers(delivery, reason, error, attempts),
                )
            )
        await asyncio.gather(*futures)  # acknowledged before the offsets move past them

    async def commit_pending(self, only: Sequence[TopicPartition] | None = None) -> None:
        offsets = {tp: offset for tp, offset in self._pending.items() if only is None or tp in only}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Another member owns the partition now and replays from the last commit.
            logger.warning("commit failed (replayed by the next owner): %r", exc)
        for tp in offsets:
            self._pending.pop(tp, None)

    def _update_lag(self, batches: dict[TopicPartition, list[Any]]) -> None:
        assigned = self.consumer.assignment()
        for tp, part in batches.items():
            if tp not in assigned:  # a rebalance ran since the batch: not ours to report
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is not None and part:
                lag = max(0, highwater - (part[-1].offset + 1))
                metrics.LAG.labels(tp.topic, str(tp.partition), self.group_id).set(lag)
