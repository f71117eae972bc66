"""Where a batch of events becomes read-model writes: ``products``, ``category_stats``, cache
and change notices, with a constant number of round trips per batch.

Per batch, in one round of concurrent reads: the pointer, the stored product documents and the
stats members of the batch's aggregates (one ``$in`` query each); fold each aggregate's events
through the library's ``ProjectionService.plan_batch`` with
:class:`~projector.projection.ProductsProjection` (version order, duplicates skipped, gaps healed
from the event store); then write, in this order:

1. ``category_stats_deltas``: each message's share of the stats change, inserted under a
   deterministic id (a replayed message is not logged twice); one folder process turns them
   into ``category_stats`` (:mod:`projector.stats`);
2. ``category_stats_members``: per product, the contribution the stats now hold;
3. ``products`` (and the rebuild's ``next`` collection): one conditional update per aggregate,
   ``{_id, version: <stored>}``, upserting new ones;
4. Redis, pipelined: the cache entries, then the change notices.

Why the stats are exactly-once in effect without transactions: a product's delta is always
"its new contribution minus what ``members`` says the stats hold", split per message; a message
whose share was logged already is not logged again. A crash between 1 and 2 (or 3) replays
the batch: the logged shares are skipped, ``members`` catches up. After a message the product is
at a version that depends only on the stream, so a replay computes the same shares. The stats
never depend on the products collection, so a rebuild cannot disturb them.
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
from tandem.events import DomainEvent
from tandem.projections import (
    AggregateChange,
    BatchPlan,
    ProjectionError,
    ProjectionService,
)
from tandem_catalog.contract import (
    CHANGES_CHANNEL,
    ChangeNotice,
    product_cache_key,
)

from projector import metrics
from projector.messages import Delivery
from projector.products import Contribution, Document, contribution
from projector.projection import ProductsProjection
from projector.stats import Share, log_shares
from projector.store import MEMBERS, Pointer, WriteConflict, conditional_update, insert_new

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    healed: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # aggregate id -> error

    def failed_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        return [d for d in deliveries if d.event and d.event.aggregate_id in self.failed]


@dataclass
class _Folded:
    stored_version: int
    doc: Document | None
    notices: list[ChangeNotice]
    healed: int
    duplicates: int
    # (partition key, offset, product version and contribution after that message), in
    # offset order
    steps: list[tuple[str, int, int, Contribution | None]]
    # Only duplicates, the newest at the stored version: a replay after a crash or a conflict
    # between the read-model write and Redis, so the cache may be older than the read model.
    replayed_latest: bool = False


def guard_key(topic: str, partition: int) -> str:
    """A field name for ``offsets.<key>``: no dots (a dot would be a path), one per topic
    partition."""
    return f"{topic.replace('.', '_')}__{partition}"


class BatchApplier:
    def __init__(
        self,
        read_db: AsyncDatabase[Document],
        projections: ProjectionService,
        redis: Redis,
        *,
        cache_ttl_s: float = 300.0,
        fold_retries: int = 3,
        retry_backoff_s: float = 0.1,
        redis_retries: int = 3,
    ) -> None:
        self.db = read_db
        self.projections = projections
        self.products = ProductsProjection.registered_in(projections)
        self.redis = redis
        self.pointer = Pointer(read_db)
        self._live = self.products.collection
        self.cache_ttl_ms = int(cache_ttl_s * 1000)
        self.fold_retries = fold_retries
        self.retry_backoff_s = retry_backoff_s
        self.redis_retries = redis_retries

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
        by_aggregate: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            if delivery.event is not None:
                by_aggregate[delivery.event.aggregate_id].append(delivery)
        result = BatchResult()
        if not by_aggregate:
            return result
        ids = list(by_aggregate)
        # The pointer changes only when a rebuild switches, so the products are read from the
        # last live collection in the same round trip as the pointer, and again only if it
        # moved. (Reading them after the pointer was no safer: a switch can come between.)
        guess = self.products.bound_to(self._live)
        targets, stored, members = await asyncio.gather(
            self.pointer.targets(), guess.load(ids), self._find(MEMBERS, ids)
        )
        live = self.products.bound_to(targets[0])
        if targets[0] != self._live:
            self._live = targets[0]
            stored = await live.load(ids)
        plan = await self._plan_with_retries(live, by_aggregate, stored, result)
        folded = {agg: _folded(change, by_aggregate[agg]) for agg, change in plan.changes.items()}

        await self._write_stats(folded, members)
        await self._write_members(folded, members)
        await self._write_products(live, plan)
        for extra in targets[1:]:
            await self._follow(live.bound_to(extra), by_aggregate, plan)
        await self._publish(folded)
        result.applied += plan.applied
        result.duplicates += plan.duplicates
        result.healed += plan.healed
        return result

    async def _find(self, collection: str, ids: list[str]) -> dict[str, Document]:
        cursor = self.db[collection].find({"_id": {"$in": ids}})
        return {doc["_id"]: doc async for doc in cursor}

    # --- folding ---------------------------------------------------------------------------

    async def _plan_with_retries(
        self,
        live: ProductsProjection,
        by_aggregate: dict[str, list[Delivery]],
        stored: Mapping[str, Document],
        result: BatchResult,
    ) -> BatchPlan[Document]:
        """The library folds (duplicates, gaps healed from the event store); aggregates it
        could not fold are retried with exponential backoff, then left in ``failed``."""
        combined: BatchPlan[Document] = BatchPlan(live)
        pending = by_aggregate
        for attempt in range(self.fold_retries + 1):
            events = [d.event for ds in pending.values() for d in ds if d.event is not None]
            planned = await self.projections.plan_batch(live, events, stored=stored)
            combined.changes.update(planned.changes)
            for aggregate_id in planned.changes:
                result.failed.pop(aggregate_id, None)
            for aggregate_id, exc in planned.failed.items():
                result.failed[aggregate_id] = _describe(exc)
            if not planned.failed or attempt == self.fold_retries:
                break
            metrics.RETRIES.labels("fold").inc()
            await asyncio.sleep(self.retry_backoff_s * 2**attempt)
            pending = {agg: by_aggregate[agg] for agg in planned.failed}
        return combined

    # --- writes ----------------------------------------------------------------------------

    async def _write_stats(self, folded: dict[str, _Folded], members: dict[str, Document]) -> None:
        """Log each message's share of the stats change (see :mod:`projector.stats`).

        Steps at or below the version ``members`` holds are counted already: a crash after the
        ``members`` write and before the ``products`` write replays them from an older product.
        """
        combined: dict[tuple[str, int, str], list[int]] = {}
        for aggregate_id, item in folded.items():
            member = members.get(aggregate_id)
            prev = _member_contribution(member)
            held = int(member.get("version", 0)) if member else 0
            for key, offset, version, cur in item.steps:
                if version <= held:
                    continue
                if cur != prev:
                    for category, d_count, d_cents in _difference(prev, cur):
                        totals = combined.setdefault((key, offset, category), [0, 0])
                        totals[0] += d_count
                        totals[1] += d_cents
                prev = cur
        if combined:
            await log_shares(
                self.db,
                (Share(k, o, c, count, cents) for (k, o, c), (count, cents) in combined.items()),
            )

    async def _write_members(
        self, folded: dict[str, _Folded], members: dict[str, Document]
    ) -> None:
        """Compare-and-set on the version read at the start of the batch: a second writer of
        the same aggregate (a partition's old owner after a rebalance) conflicts instead of
        moving ``members`` back, and the batch is recomputed."""
        new, updates = [], []
        for aggregate_id, item in folded.items():
            cur = item.steps[-1][3] if item.steps else None
            stored = members.get(aggregate_id)
            if cur == _member_contribution(stored):
                continue
            share: Document = {
                "category": cur.category if cur else None,
                "price_cents": cur.price_cents if cur else 0,
                "version": int(item.doc["version"]) if item.doc else 0,
            }
            if stored is None:  # a first contribution: an insert, refused if another came first
                new.append({"_id": aggregate_id, **share})
                continue
            query: Document = {"_id": aggregate_id, "version": stored["version"]}
            updates.append({"q": query, "u": {"$set": share}, "upsert": True})
        if new:
            await insert_new(self.db, MEMBERS, new)
        if updates:
            await conditional_update(self.db, MEMBERS, updates)

    async def _write_products(self, live: ProductsProjection, plan: BatchPlan[Document]) -> None:
        await live.save(plan.changed())

    async def _follow(
        self,
        target: ProductsProjection,
        by_aggregate: dict[str, list[Delivery]],
        primary: BatchPlan[Document],
    ) -> None:
        """Apply the batch to the collection a rebuild is catching up (its own versions)."""
        events = [
            d.event for agg in primary.changes for d in by_aggregate[agg] if d.event is not None
        ]
        for _ in range(10):  # the rebuild's catch-up writes here too; conflicts are expected
            planned = await self.projections.plan_batch(target, events)
            for aggregate_id, exc in planned.failed.items():
                # The rebuild's catch-up reads the event store after this, so it heals it.
                logger.warning("rebuild target %s: %s: %s", target.collection, aggregate_id, exc)
            try:
                await target.save(planned.changed())
            except WriteConflict:
                metrics.CONFLICTS.inc()
                continue
            return
        logger.warning(
            "rebuild target %s: gave up after conflicts; catch-up heals it", target.collection
        )

    async def _publish(self, folded: dict[str, _Folded]) -> None:
        """Cache first, then notices, in one pipeline: a notified reader finds fresh data.

        A replayed batch whose products are already written (a crash or conflict before this
        step) has no notices to send, but its cache entries may predate the write: they are
        set again from the read model. (Its notices are not sent again: a WebSocket client
        that sees the next version skip one asks for the current state, see query-service.)
        """
        changed = {agg: item for agg, item in folded.items() if item.notices and item.doc}
        refresh = {
            agg: item.doc for agg, item in folded.items() if item.replayed_latest and item.doc
        }
        if not changed and not refresh:
            return
        for attempt in range(self.redis_retries + 1):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for agg, doc in [*((a, i.doc) for a, i in changed.items()), *refresh.items()]:
                        pipe.set(product_cache_key(agg), orjson.dumps(doc), px=self.cache_ttl_ms)
                    for item in changed.values():
                        for notice in item.notices:
                            pipe.publish(CHANGES_CHANNEL, notice.model_dump_json())
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


def _folded(change: AggregateChange[Document], deliveries: list[Delivery]) -> _Folded:
    """What the writes after the fold need: the notices (one per step, healed ones included)
    and the stats steps (see ``_write_stats``)."""
    delivered = sorted(deliveries, key=lambda d: (_version(d), d.offset))
    notices = []
    for step in change.steps:
        # A healed event is announced with the delivery that revealed the gap.
        trigger = next((d for d in delivered if _version(d) >= step.event.version), delivered[-1])
        notices.append(_notice(step.event, step.output, trigger))
    item = _Folded(
        change.stored_version,
        change.state,
        notices,
        change.healed,
        change.duplicates,
        [],
        replayed_latest=not change.steps
        and any(_version(d) == change.stored_version for d in deliveries),
    )
    reached = {v: contribution(doc) for v, doc in change.states_by_version().items()}
    # Stats count messages in offset order: after a message, the product is at the highest
    # version delivered so far (earlier versions were healed), whatever order they came in.
    running = change.stored_version
    for delivery in sorted(deliveries, key=lambda d: (d.topic, d.partition, d.offset)):
        running = max(running, _version(delivery))
        key = guard_key(delivery.topic, delivery.partition)
        item.steps.append((key, delivery.offset, running, reached[running]))
    return item


def _describe(exc: Exception) -> str:
    cause = exc.__cause__ if isinstance(exc, ProjectionError) and exc.__cause__ else exc
    return f"{type(cause).__name__}: {cause}"


def _version(delivery: Delivery) -> int:
    return delivery.event.version if delivery.event else 0


def _notice(event: DomainEvent, changed: dict[str, object], delivery: Delivery) -> ChangeNotice:
    return ChangeNotice(
        id=event.aggregate_id,
        version=event.version,
        event_type=event.event_type,
        changed_fields=changed,
        correlation_id=event.correlation_id or delivery.correlation_id,
        occurred_at=event.occurred_at.isoformat(),
    )


def _member_contribution(doc: Document | None) -> Contribution | None:
    if not doc or doc.get("category") is None:
        return None
    return Contribution(str(doc["category"]), int(doc["price_cents"]))


def _difference(prev: Contribution | None, cur: Contribution | None) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    if prev is not None:
        out.append((prev.category, -1, -prev.price_cents))
    if cur is not None:
        out.append((cur.category, 1, cur.price_cents))
    return out


__all__ = ["BatchApplier", "BatchResult", "guard_key"]
