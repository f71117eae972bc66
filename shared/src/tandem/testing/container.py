"""Wires the in-memory versions of every port together for one test."""

from __future__ import annotations

from typing import Any, TypeVar

from tandem.dispatch import EventDispatcher
from tandem.event_store.memory import InMemoryEventStore
from tandem.handlers import CommandHandler, QueryHandler
from tandem.mediator import Mediator, get_mediator
from tandem.messages import Command, Query
from tandem.projections.checkpoints import InMemoryProjectionRepository
from tandem.projections.service import ProjectionService
from tandem.read_model.models import ReadModel
from tandem.read_model.repository import InMemoryReadModelRepository
from tandem.testing.harness import CommandTestHarness, EventStoreTestHarness, QueryTestHarness

M = TypeVar("M", bound=ReadModel)


class CQRSTestContainer:
    """A fresh mediator, dispatcher, event store and projection service per test.

    The mediator is a new instance, never the process-wide one, so tests cannot leak handlers
    into each other.
    """

    def __init__(self) -> None:
        self.mediator: Mediator = get_mediator(new_instance=True)
        self.event_dispatcher = EventDispatcher()
        self.event_store = InMemoryEventStore()
        self.read_model_repositories: dict[str, InMemoryReadModelRepository[Any]] = {}
        self.projection_service: ProjectionService | None = None
        self.command_handlers: dict[str, CommandHandler[Any, Any]] = {}
        self.query_handlers: dict[str, QueryHandler[Any, Any]] = {}

    def register_command_handler(
        self, command_type: type[Command[Any]], handler: CommandHandler[Any, Any]
    ) -> None:
        self.mediator.register_command_handler(command_type, handler)
        self.command_handlers[command_type.__name__] = handler

    def register_query_handler(
        self, query_type: type[Query[Any]], handler: QueryHandler[Any, Any]
    ) -> None:
        self.mediator.register_query_handler(query_type, handler)
        self.query_handlers[query_type.__name__] = handler

    def create_read_model_repository(self, model_type: type[M]) -> InMemoryReadModelRepository[M]:
        repository = InMemoryReadModelRepository(model_type)
        self.read_model_repositories[model_type.__name__] = repository
        return repository

    def create_projection_service(self) -> ProjectionService:
        if self.projection_service is None:
            self.projection_service = ProjectionService(
                projection_repository=InMemoryProjectionRepository(),
                event_dispatcher=self.event_dispatcher,
            )
        return self.projection_service

    def get_command_test_harness(
        self, command_type: type[Command[Any]]
    ) -> CommandTestHarness[Any, Any] | None:
        handler = self.command_handlers.get(command_type.__name__)
        return CommandTestHarness(handler) if handler is not None else None

    def get_query_test_harness(
        self, query_type: type[Query[Any]]
    ) -> QueryTestHarness[Any, Any] | None:
        handler = self.query_handlers.get(query_type.__name__)
        return QueryTestHarness(handler) if handler is not None else None

    def get_event_store_test_harness(self) -> EventStoreTestHarness:
        return EventStoreTestHarness(self.event_store)

    async def clean(self) -> None:
        for repository in self.read_model_repositories.values():
            await repository.clear()
        if self.projection_service is not None:
            checkpoints = self.projection_service.projection_repository
            if checkpoints is not None:
                await checkpoints.reset()
        self.mediator = get_mediator(new_instance=True)
        self.event_dispatcher = EventDispatcher()
        self.event_store = InMemoryEventStore()
        self.projection_service = None
        self.command_handlers = {}
        self.query_handlers = {}
