"""Where a batch of events becomes read-model writes, for every read model the process serves,
with a constant number of round trips per batch.

Per batch, in one round of concurrent reads: per fold read model, its pointer, its stored
documents and the ``members`` of the totals derived from it (one ``$in`` query each); then per
fold read model, only over the events of the types it declares, fold each aggregate's events
through the app's ``ProjectionService.plan_batch`` (version order, duplicates skipped, gaps
healed from that app's event store); then write, in this order:

1. per totals read model derived from it: each message's share of the totals change, then
   ``members`` (see :mod:`tandem.runtime.projector.totals`);
2. the documents (and the rebuild's ``next`` collection): one conditional update per
   aggregate, ``{_id, version: <stored>}``, upserting new ones;
3. Redis, pipelined, for every fold read model: the cache entries, then the change notices.

A crash between any two writes replays the batch: every write is idempotent (conditional on
versions, or logged under a deterministic id), so nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tandem.app import Document, ReadModelSpec
from tandem.events import DomainEvent
from tandem.projections import AggregateChange, BatchPlan, ProjectionError, ProjectionService
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.projector import metrics
from tandem.runtime.projector.messages import Delivery
from tandem.runtime.projector.projection import FoldReadModel
from tandem.runtime.projector.served import AppPart, Served
from tandem.runtime.projector.store import Pointer, WriteConflict
from tandem.runtime.projector.totals import SourceSteps, Totals

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    healed: int = 0
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    """(app name, aggregate id) -> error, for aggregates a read model could not fold."""
    app_of_topic: Mapping[str, str] = field(default_factory=dict)

    def failed_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        return [
            d
            for d in deliveries
            if d.event and (self.app_of_topic.get(d.topic, ""), d.event.aggregate_id) in self.failed
        ]

    def error_of(self, delivery: Delivery) -> str:
        assert delivery.event is not None
        return self.failed[(self.app_of_topic.get(delivery.topic, ""), delivery.event.aggregate_id)]


@dataclass
class _Folded:
    doc: Document | None
    notices: list[ChangeNotice]
    source: SourceSteps
    # Only duplicates, the newest at the stored version: a replay after a crash or a conflict
    # between the read-model write and Redis, so the cache may be older than the read model.
    replayed_latest: bool = False


@dataclass
class FoldTarget:
    """One served fold read model, the totals derived from it, and where it is read."""

    part: AppPart
    spec: ReadModelSpec
    projections: ProjectionService
    projection: FoldReadModel
    totals: list[Totals]
    pointer: Pointer
    live: str = ""

    def __post_init__(self) -> None:
        self.live = self.live or self.projection.collection


@dataclass
class _Read:
    """What one target's batch read: pointer targets, stored documents, totals members."""

    targets: list[str]
    stored: Mapping[str, Document]
    members: list[dict[str, Document]]


def guard_key(topic: str, partition: int) -> str:
    """A field name for ``offsets.<key>``: no dots (a dot would be a path), one per topic
    partition."""
    return f"{topic.replace('.', '_')}__{partition}"


class BatchApplier:
    def __init__(
        self,
        read_db: AsyncDatabase[Document],
        served: Served,
        projections: Mapping[str, ProjectionService],
        redis: Redis,
        *,
        cache_ttl_s: float = 300.0,
        fold_retries: int = 3,
        retry_backoff_s: float = 0.1,
        redis_retries: int = 3,
    ) -> None:
        """``projections``: per app name, the service its fold read models are registered in
        (its event store heals their gaps)."""
        self.db = read_db
        self.served = served
        self.targets: list[FoldTarget] = [
            FoldTarget(
                part,
                spec,
                projections[part.app.name],
                FoldReadModel.registered_in(projections[part.app.name], spec.name),
                [Totals(t, read_db) for t in part.totals_of(spec)],
                Pointer(read_db, spec.name),
            )
            for part in served.parts
            for spec in part.folds
        ]
        self.app_of_topic = {t: p.app.name for p in served.parts for t in p.topics}
        self.redis = redis
        self.cache_ttl_ms = int(cache_ttl_s * 1000)
        self.fold_retries = fold_retries
        self.retry_backoff_s = retry_backoff_s
        self.redis_retries = redis_retries

    @property
    def totals(self) -> list[tuple[FoldTarget, Totals]]:
        return [(target, totals) for target in self.targets for totals in target.totals]

    async def apply(self, deliveries: Sequence[Delivery], max_conflicts: int = 10) -> BatchResult:
        """Apply decoded deliveries; infrastructure errors raise (nothing to commit), per-aggregate
        failures that survive the retries are returned in ``failed`` (to dead-letter)."""
        started = time.perf_counter()
        for attempt in range(max_conflicts + 1):
            try:
                result = await self._apply_once(deliveries)
            except WriteConflict as exc:
                metrics.CONFLICTS.inc()
                if attempt == max_conflicts:
                    raise
                logger.info("write conflict, recomputing the batch: %s", exc)
                await asyncio.sleep(self.retry_backoff_s * (attempt + 1))
                continue
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            return result
        raise AssertionError("unreachable")

    async def _apply_once(self, deliveries: Sequence[Delivery]) -> BatchResult:
        result = BatchResult(app_of_topic=self.app_of_topic)
        work: list[tuple[FoldTarget, dict[str, list[Delivery]]]] = []
        for target in self.targets:
            by_aggregate: dict[str, list[Delivery]] = defaultdict(list)
            for d in deliveries:
                if (
                    d.event is not None
                    and d.topic in target.part.topics
                    and target.projection.handles(d.event)
                ):
                    by_aggregate[d.event.aggregate_id].append(d)
            if by_aggregate:
                work.append((target, by_aggregate))
        if not work:
            return result
        reads = await asyncio.gather(*(self._read(t, list(by)) for t, by in work))
        publish: list[tuple[ReadModelSpec, dict[str, _Folded]]] = []
        for (target, by_aggregate), read in zip(work, reads, strict=True):
            live = target.projection.bound_to(read.targets[0])
            plan = await self._plan_with_retries(target, live, by_aggregate, read.stored, result)
            folded = {
                agg: _folded(target.spec, change, by_aggregate[agg])
                for agg, change in plan.changes.items()
            }
            sources = {agg: item.source for agg, item in folded.items()}
            for totals, members in zip(target.totals, read.members, strict=True):
                await totals.write(sources, members)
            await live.save(plan.changed())
            for extra in read.targets[1:]:
                await self._follow(target, live.bound_to(extra), by_aggregate, plan)
            # Every fold read model: the query side caches each one and wakes its min_version
            # readers on these notices; ``live`` only decides whether a WebSocket serves them.
            publish.append((target.spec, folded))
            result.applied += plan.applied
            result.duplicates += plan.duplicates
            result.healed += plan.healed
        await self._publish(publish)
        return result

    async def _read(self, target: FoldTarget, ids: list[str]) -> _Read:
        # The pointer changes only when a rebuild switches, so the documents are read from the
        # last live collection in the same round trip as the pointer, and again only if it
        # moved. (Reading them after the pointer was no safer: a switch can come between.)
        guess = target.projection.bound_to(target.live)
        targets, stored, members = await asyncio.gather(
            target.pointer.targets(),
            guess.load(ids),
            asyncio.gather(*(totals.load_members(ids) for totals in target.totals)),
        )
        if targets[0] != target.live:
            target.live = targets[0]
            stored = await target.projection.bound_to(targets[0]).load(ids)
        return _Read(targets, stored, list(members))

    # --- folding ---------------------------------------------------------------------------

    async def _plan_with_retries(
        self,
        target: FoldTarget,
        live: FoldReadModel,
        by_aggregate: dict[str, list[Delivery]],
        stored: Mapping[str, Document],
        result: BatchResult,
    ) -> BatchPlan[Document]:
        """The library folds (duplicates, gaps healed from the event store); aggregates it
        could not fold are retried with exponential backoff, then left in ``failed``."""
        app = target.part.app.name
        combined: BatchPlan[Document] = BatchPlan(live)
        pending = by_aggregate
        for attempt in range(self.fold_retries + 1):
            events = [d.event for ds in pending.values() for d in ds if d.event is not None]
            planned = await target.projections.plan_batch(live, events, stored=stored)
            combined.changes.update(planned.changes)
            for aggregate_id in planned.changes:
                result.failed.pop((app, aggregate_id), None)
            for aggregate_id, exc in planned.failed.items():
                result.failed[(app, aggregate_id)] = _describe(exc)
            if not planned.failed or attempt == self.fold_retries:
                break
            metrics.RETRIES.labels("fold").inc()
            await asyncio.sleep(self.retry_backoff_s * 2**attempt)
            pending = {agg: by_aggregate[agg] for agg in planned.failed}
        return combined

    # --- writes ----------------------------------------------------------------------------

    async def _follow(
        self,
        target: FoldTarget,
        into: FoldReadModel,
        by_aggregate: dict[str, list[Delivery]],
        primary: BatchPlan[Document],
    ) -> None:
        """Apply the batch to the collection a rebuild is catching up (its own versions)."""
        events = [
            d.event for agg in primary.changes for d in by_aggregate[agg] if d.event is not None
        ]
        for _ in range(10):  # the rebuild's catch-up writes here too; conflicts are expected
            planned = await target.projections.plan_batch(into, events)
            for aggregate_id, exc in planned.failed.items():
                # The rebuild's catch-up reads the event store after this, so it heals it.
                logger.warning("rebuild target %s: %s: %s", into.collection, aggregate_id, exc)
            try:
                await into.save(planned.changed())
            except WriteConflict:
                metrics.CONFLICTS.inc()
                continue
            return
        logger.warning(
            "rebuild target %s: gave up after conflicts; catch-up heals it", into.collection
        )

    async def _publish(self, batches: list[tuple[ReadModelSpec, dict[str, _Folded]]]) -> None:
        """Cache first, then notices, in one pipeline: a notified reader finds fresh data.

        A replayed batch whose documents are already written (a crash or conflict before this
        step) has no notices to send, but its cache entries may predate the write: they are
        set again from the read model. (Its notices are not sent again: a WebSocket client
        that sees the next version skip one asks for the current state, see query-service.)
        """
        entries: list[tuple[str, Document]] = []
        notices: list[tuple[str, ChangeNotice]] = []
        for spec, folded in batches:
            for agg, item in folded.items():
                if item.doc and (item.notices or item.replayed_latest):
                    entries.append((spec.cache_key(agg), item.doc))
                notices.extend((spec.channel, n) for n in item.notices if item.doc)
        if not entries and not notices:
            return
        for attempt in range(self.redis_retries + 1):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, doc in entries:
                        pipe.set(key, orjson.dumps(doc), px=self.cache_ttl_ms)
                    for channel, notice in notices:
                        pipe.publish(channel, notice.model_dump_json())
                    await pipe.execute()
                return
            except (RedisError, OSError) as exc:
                if attempt == self.redis_retries:
                    # The read model is durable; a stale cache entry expires with its TTL.
                    metrics.REDIS_FAILURES.inc()
                    logger.error(
                        "redis cache/notices given up after %d tries: %r", attempt + 1, exc
                    )
                    return
                metrics.RETRIES.labels("redis").inc()
                await asyncio.sleep(self.retry_backoff_s * 2**attempt)


def _folded(
    spec: ReadModelSpec, change: AggregateChange[Document], deliveries: list[Delivery]
) -> _Folded:
    """What the writes after the fold need: the notices (one per step, healed ones included)
    and the totals' steps (see :mod:`tandem.runtime.projector.totals`)."""
    delivered = sorted(deliveries, key=lambda d: (_version(d), d.offset))
    notices = []
    for step in change.steps:
        # A healed event is announced with the delivery that revealed the gap.
        trigger = next((d for d in delivered if _version(d) >= step.event.version), delivered[-1])
        notices.append(_notice(spec, step.event, step.output, trigger))
    # Totals count messages in offset order: after a message, the document is at the highest
    # version delivered so far (earlier versions were healed), whatever order they came in.
    steps = []
    running = change.stored_version
    for delivery in sorted(deliveries, key=lambda d: (d.topic, d.partition, d.offset)):
        running = max(running, _version(delivery))
        steps.append((guard_key(delivery.topic, delivery.partition), delivery.offset, running))
    final = int(change.state["version"]) if change.state else 0
    return _Folded(
        change.state,
        notices,
        SourceSteps(final, change.states_by_version(), steps),
        replayed_latest=not change.steps
        and any(_version(d) == change.stored_version for d in deliveries),
    )


def _describe(exc: Exception) -> str:
    cause = exc.__cause__ if isinstance(exc, ProjectionError) and exc.__cause__ else exc
    return f"{type(cause).__name__}: {cause}"


def _version(delivery: Delivery) -> int:
    return delivery.event.version if delivery.event else 0


def _notice(
    spec: ReadModelSpec, event: DomainEvent, changed: object, delivery: Delivery
) -> ChangeNotice:
    return ChangeNotice(
        read_model=spec.name,
        id=event.aggregate_id,
        version=event.version,
        event_type=event.event_type,
        changed_fields=changed if isinstance(changed, dict) else {},
        correlation_id=event.correlation_id or delivery.correlation_id,
        occurred_at=event.occurred_at.isoformat(),
    )


__all__ = ["BatchApplier", "BatchResult", "FoldTarget", "guard_key"]
