"""Applies events to every projection registered for their type, exactly once per version.

Per (projection, aggregate) the service keeps a checkpoint (the last applied version):

* ``event.version <= checkpoint``: a duplicate from at-least-once delivery; skipped.
* ``event.version == checkpoint + 1``: applied, then the checkpoint moves.
* ``event.version > checkpoint + 1``: :class:`ProjectionGapError`; nothing is applied, the
  caller fetches the missing events from the event store and applies them first.

A projection that raises surfaces as :class:`ProjectionError` (the cause chained), never a log
line: losing an event silently is the one thing a projector must not do.
"""

from __future__ import annotations

from typing import Any

from tandem.dispatch import EventDispatcher, event_type_of
from tandem.locks import StripedLocks
from tandem.projections.checkpoints import ProjectionRepository
from tandem.projections.projection import Projection, ProjectionError, ProjectionGapError


class ProjectionService:
    def __init__(
        self,
        projection_repository: ProjectionRepository,
        event_dispatcher: EventDispatcher | None = None,
    ) -> None:
        self.projection_repository = projection_repository
        self.event_dispatcher = event_dispatcher
        self._projections: dict[str, list[Projection[Any, Any]]] = {}
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
        async with lock:
            for projection in projections:
                stored = await self.projection_repository.get_version(projection.name, aggregate_id)
                if version <= stored:
                    continue
                if version > stored + 1:
                    raise ProjectionGapError(aggregate_id, stored, version, projection.name)
                try:
                    await projection.apply(event)
                except Exception as exc:
                    raise ProjectionError(projection.name, event, exc) from exc
                await self.projection_repository.set_version(projection.name, aggregate_id, version)
                applied = True
        if applied and self.event_dispatcher is not None:
            # After the read models reflect the event, so a notified client reads fresh data.
            await self.event_dispatcher.publish(event)

    async def apply_events(self, events: list[Any]) -> None:
        """Apply in version order (per aggregate); useful to heal a gap."""
        for event in sorted(events, key=lambda item: (str(item.aggregate_id), int(item.version))):
            await self.apply_event(event)
