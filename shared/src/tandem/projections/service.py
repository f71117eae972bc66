"""Applies events to every projection registered for their type, exactly once per version.

Per (projection, aggregate) the service keeps a checkpoint (the last applied version):

* ``event.version <= checkpoint``: a duplicate from at-least-once delivery; skipped.
* ``event.version == checkpoint + 1``: applied, then the checkpoint moves.
* ``event.version > checkpoint + 1``: :class:`ProjectionGapError`; nothing is applied, the
  caller fetches the missing events from the event store and applies them first.

A projection that raises surfaces as :class:`ProjectionError` (the cause chained), never a log
line: losing an event silently is the one thing a projector must not do.

Batch projections (:mod:`tandem.projections.batch`) register here too and get the same rules
a batch at a time: :meth:`ProjectionService.plan_batch` / :meth:`ProjectionService.apply_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tandem.dispatch import EventDispatcher, event_type_of
from tandem.events import DomainEvent
from tandem.locks import StripedLocks
from tandem.projections.batch import BatchPlan, BatchProjection, EventSource, TState, plan
from tandem.projections.checkpoints import ProjectionRepository
from tandem.projections.projection import Projection, ProjectionError, ProjectionGapError


class ProjectionService:
    def __init__(
        self,
        projection_repository: ProjectionRepository | None = None,
        event_dispatcher: EventDispatcher | None = None,
        *,
        event_store: EventSource | None = None,
    ) -> None:
        self.projection_repository = projection_repository
        self.event_dispatcher = event_dispatcher
        self.event_store = event_store  # heals gaps of batch projections
        self._projections: dict[str, list[Projection[Any, Any]]] = {}
        self._batch_projections: dict[str, BatchProjection[Any]] = {}
        # Two concurrent deliveries of one aggregate's events would race on its checkpoint;
        # a fixed set of striped locks serialises them without growing with the aggregates.
        self._locks = StripedLocks()

    async def register_projection(self, event_type: str, projection: Projection[Any, Any]) -> None:
        registered = self._projections.setdefault(event_type, [])
        if projection not in registered:
            registered.append(projection)

    def projections_for(
        self, event: Any, event_type: str | None = None, read_model_type: str | None = None
    ) -> list[Projection[Any, Any]]:
        # The seed registers under the class name and some callers use ``event_type``; accept
        # both unless the caller names the type explicitly.
        names = [event_type] if event_type else [type(event).__name__, event_type_of(event)]
        found: list[Projection[Any, Any]] = []
        for name in dict.fromkeys(names):
            for projection in self._projections.get(name, []):
                if projection in found:
                    continue
                if read_model_type and projection.read_model_type_name not in (
                    None,
                    read_model_type,
                ):
                    continue
                found.append(projection)
        return found

    async def apply_event(
        self,
        event: Any,
        *,
        event_type: str | None = None,
        read_model_type: str | None = None,
    ) -> None:
        aggregate_id = str(event.aggregate_id)
        version = int(event.version)
        lock = self._locks.for_key(aggregate_id)
        projections = self.projections_for(event, event_type, read_model_type)
        applied = not projections
        checkpoints = self.projection_repository
        if projections and checkpoints is None:
            raise TypeError("per-event projections need a projection_repository (checkpoints)")
        async with lock:
            for projection in projections:
                assert checkpoints is not None
                stored = await checkpoints.get_version(projection.name, aggregate_id)
                if version <= stored:
                    continue
                if version > stored + 1:
                    raise ProjectionGapError(aggregate_id, stored, version, projection.name)
                try:
                    await projection.apply(event)
                except Exception as exc:
                    raise ProjectionError(projection.name, event, exc) from exc
                await checkpoints.set_version(projection.name, aggregate_id, version)
                applied = True
        if applied and self.event_dispatcher is not None:
            # After the read models reflect the event, so a notified client reads fresh data.
            await self.event_dispatcher.publish(event)

    # --- batch projections -----------------------------------------------------------------

    def register_batch_projection(self, projection: BatchProjection[Any]) -> None:
        self._batch_projections[projection.name] = projection

    def batch_projection(self, name: str) -> BatchProjection[Any]:
        return self._batch_projections[name]

    async def plan_batch(
        self,
        projection: BatchProjection[TState],
        events: Iterable[DomainEvent],
        *,
        stored: Mapping[str, TState] | None = None,
    ) -> BatchPlan[TState]:
        """Fold a batch onto the stored states without writing (see ``batch.plan``); gaps are
        healed from ``event_store`` when the service has one."""
        return await plan(projection, events, stored=stored, event_source=self.event_store)

    async def apply_batch(self, events: Iterable[DomainEvent]) -> dict[str, BatchPlan[Any]]:
        """Plan and save the batch for every registered batch projection; then, if there is
        a dispatcher, publish each applied event (after the read models hold it). Aggregates
        that failed are in each plan's ``failed``, for the caller to retry or dead-letter."""
        batch = list(events)
        plans: dict[str, BatchPlan[Any]] = {}
        for projection in self._batch_projections.values():
            planned = await self.plan_batch(projection, batch)
            changed = planned.changed()
            if changed:
                await projection.save(changed)
            plans[projection.name] = planned
        if self.event_dispatcher is not None:
            published: set[str] = set()
            for planned in plans.values():
                for change in planned.changed():
                    for step in change.steps:
                        if step.event.event_id not in published:
                            published.add(step.event.event_id)
                            await self.event_dispatcher.publish(step.event)
        return plans

    async def apply_events(self, events: list[Any]) -> None:
        """Apply in version order (per aggregate); useful to heal a gap."""
        for event in sorted(events, key=lambda item: (str(item.aggregate_id), int(item.version))):
            await self.apply_event(event)
