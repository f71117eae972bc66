"""Rebuild a fold read model, by name, from its app's event store without downtime.

1. Pick (or, after an interruption, resume) a new collection ``<name>_<stamp>``, recorded in
   the pointer as ``building`` with the event-store position replayed so far.
2. Replay ``read_all`` into it page by page with the same fold and conditional writes as the
   live projector (so a rerun re-applies nothing twice).
3. Set ``next``: from now on every live projector writes both collections. Wait
   ``rebuild_settle_s`` so no live batch still writes only the old one.
4. Catch up: replay the event store again from ``position - rebuild_catchup_margin`` (commits
   take their position before they are visible), so whatever live applied to the old
   collection before step 3 is in the new one too.
5. Switch ``active`` atomically (one pointer document, which keeps the old one as ``previous``),
   announce it to readers (a ``ReadModelSwitched`` change notice), wait again, catch up once
   more, drop the old collection, forget ``previous``.

A rerun after an interruption before the switch resumes from the recorded ``position``; after
the switch (``previous`` still set) it finishes that rebuild: the announcement, the last
catch-up and the drop of ``previous``, and switches nothing again.

Totals read models derived from it are untouched and stay exact: the live projector
maintains them from the event stream, independently of the source collection (see
:mod:`tandem.runtime.projector.totals`), so the switch cannot double-count or lose anything
there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tandem.app import Document, ReadModelSpec
from tandem.event_store.mongo import MongoEventStore
from tandem.events import DomainEvent
from tandem.projections import ProjectionService
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.projector.projection import FoldReadModel
from tandem.runtime.projector.store import Pointer, WriteConflict, ensure_indexes

logger = logging.getLogger(__name__)
Progress = Callable[[int], None]
READ_MODEL_SWITCHED = "ReadModelSwitched"
"""``event_type`` of the change notice announcing a switch (``id``: the logical read model);
the query-service then re-reads the pointer and clears its in-process cache."""


class Rebuilder:
    def __init__(
        self,
        spec: ReadModelSpec,
        read_db: AsyncDatabase[Document],
        event_store: MongoEventStore,
        projections: ProjectionService,
        *,
        page_size: int = 2000,
        settle_s: float = 5.0,
        catchup_margin: int = 10_000,
        redis: Redis | None = None,
    ) -> None:
        self.db = read_db
        self.store = event_store
        self.projections = projections
        self.spec = spec
        self.projection = FoldReadModel.registered_in(projections, spec.name)
        self.pointer = Pointer(read_db, spec.name)
        self.page_size = page_size
        self.settle_s = settle_s
        self.catchup_margin = catchup_margin
        self.redis = redis

    async def run(self, progress: Progress | None = None) -> str:
        pointer = await self.pointer.read()
        previous = pointer.get("previous")
        if previous and not pointer.get("building"):
            # Interrupted after the switch: finish that rebuild instead of starting another
            # (which would switch again and leave ``previous`` behind for ever).
            active = str(pointer["active"])
            logger.info("finishing the rebuild into %s (switched from %s)", active, previous)
            await self._finish(str(previous), active, int(pointer.get("position") or 0))
            return active
        old = str(pointer.get("active") or self.pointer.name)
        target = pointer.get("building")
        if not target:
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
            target = f"{self.pointer.name}_{stamp}"
            await self.pointer.update({"active": old, "building": target, "position": 0})
            logger.info("rebuilding %s into %s", old, target)
        else:
            logger.info("resuming the rebuild into %s", target)
        target = str(target)
        await ensure_indexes(self.db, target, self.spec.indexes)
        position = int(pointer.get("position") or 0) if pointer.get("building") else 0
        position = await self._replay(target, position, progress, record=True, until=_now())
        await self.pointer.update({"next": target})
        await asyncio.sleep(self.settle_s)
        # Live projectors write ``next`` from here on: the catch-up needs only what was
        # committed until now, so it ends however fast commits keep arriving.
        await self._replay(
            target, max(0, position - self.catchup_margin), None, record=False, until=_now()
        )
        # ``position`` stays until the end: a rerun after a crash from here needs it for the
        # last catch-up.
        await self.pointer.update({"active": target, "previous": old}, unset=("building", "next"))
        await self._finish(old, target, position)
        return target

    async def _finish(self, old: str, target: str, position: int) -> None:
        """After the switch: announce it, wait, catch up once more, drop ``old``."""
        await self._announce(target)
        await asyncio.sleep(self.settle_s)
        # Second pass, added when the server's conditional updates raced (FerretDB v1): re-apply
        # anything the live projector's writes to ``next`` left behind. On MongoDB every write
        # is an atomic conditional one, so this finds nothing to redo; it is bounded and cheap.
        await self._replay(
            target, max(0, position - self.catchup_margin), None, record=False, until=_now()
        )
        if old != target:
            await self.db.drop_collection(old)
        await self.pointer.update({}, unset=("previous", "position"))
        logger.info("%s now read from %s; dropped %s", self.spec.name, target, old)

    async def _announce(self, target: str) -> None:
        """Publish ``ReadModelSwitched`` so readers re-read the pointer now rather than when
        their cached copy expires. At most once, like every notice: a reader that misses it
        still follows the pointer within its refresh interval, so a failure is only logged."""
        if self.redis is None:
            return
        notice = ChangeNotice(
            read_model=self.pointer.name,
            id=self.pointer.name,
            version=0,
            event_type=READ_MODEL_SWITCHED,
            changed_fields={"active": target},
        )
        try:
            await self.redis.publish(self.spec.channel, notice.model_dump_json())
        except (RedisError, OSError) as exc:
            logger.warning("could not announce the switch to %s: %r", target, exc)

    async def _replay(
        self, target: str, position: int, progress: Progress | None, *, record: bool, until: int
    ) -> int:
        """Replay commits after ``position`` up to ``until`` (a store position); without the
        bound, a write rate above the replay rate would keep a pass going for ever."""
        while True:
            page = await self.store.read_all(after=position, limit=self.page_size)
            commits = [commit for commit in page if commit.position <= until]
            if not commits:
                return position
            events = [event for commit in commits for event in commit.events]
            await self.apply(target, events)
            position = commits[-1].position
            if record:
                await self.pointer.update({"position": position})
            if progress is not None:
                progress(len(commits))
            if len(commits) < len(page):
                return position

    async def apply(self, target: str, events: list[DomainEvent]) -> None:
        """Fold ``events`` onto ``target`` with the live projection (events at or below a
        stored version are skipped; the live projector may be writing the same documents, so
        conflicts redo). An event that cannot be folded stops the rebuild: the old collection
        stays active, and a rerun resumes."""
        projection = self.projection.bound_to(target)
        for _ in range(20):
            planned = await self.projections.plan_batch(projection, events)
            if planned.failed:
                aggregate_id, exc = next(iter(planned.failed.items()))
                raise RuntimeError(f"rebuild of {target}: {aggregate_id}: {exc}") from exc
            try:
                await projection.save(planned.changed())
            except WriteConflict:
                continue
            return
        raise RuntimeError(f"rebuild of {target}: too many write conflicts")


def _now() -> int:
    """The store position of a commit made now (``MongoEventStore`` positions are commit time in
    microseconds times 1000 plus a sequence below 1000)."""
    return time.time_ns() // 1000 * 1000 + 999
