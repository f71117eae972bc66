"""Bridges the event-handler world (mediator, consumers) to the projection service."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from tandem.events import DomainEvent
from tandem.handlers import EventHandler
from tandem.projections.service import ProjectionService

TEvent = TypeVar("TEvent", bound=DomainEvent)
TReadModel = TypeVar("TReadModel")


class ProjectionEventHandler(EventHandler[TEvent], Generic[TEvent, TReadModel]):
    """Applies an event to the projections of ``read_model_type`` registered for
    ``event_type``. Errors (gap, projection failure) propagate: the caller must not lose the
    event."""

    def __init__(
        self,
        projection_service: ProjectionService,
        event_type: type[TEvent],
        read_model_type: type[TReadModel] | type[Any],
    ) -> None:
        self.projection_service = projection_service
        self.event_type = event_type
        self.read_model_type = read_model_type

    async def handle(self, event: TEvent) -> None:
        await self.projection_service.apply_event(
            event,
            event_type=self.event_type.__name__,
            read_model_type=self.read_model_type.__name__,
        )
