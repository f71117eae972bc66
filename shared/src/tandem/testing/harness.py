"""Test harnesses from the seed document: thin wrappers that record and assert.

They drive real handlers, services and stores (usually the in-memory ones); nothing here
mocks the code under test except :meth:`QueryTestHarness.mock_read_model_service`, which
replaces one method of the *service* a query handler reads from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from tandem.event_store.protocol import EventStore
from tandem.events import DomainEvent
from tandem.handlers import CommandHandler, NullUnitOfWork, QueryHandler
from tandem.projections.projection import Projection
from tandem.result import Result

TCommand = TypeVar("TCommand")
TQuery = TypeVar("TQuery")
TResult = TypeVar("TResult")
TReadModel = TypeVar("TReadModel")
TEvent = TypeVar("TEvent")


class MockUnitOfWork(NullUnitOfWork):
    """A unit of work that records what the handler did with it (entered, committed, rolled
    back): the null unit of work plus ``entered``."""

    def __init__(self) -> None:
        self.entered = False
        self.committed = False
        self.rolled_back = False

    async def __aenter__(self) -> MockUnitOfWork:
        self.entered = True
        return self


class CommandTestHarness(Generic[TCommand, TResult]):
    """Executes a command handler and captures the events it adds with ``add_event``."""

    def __init__(self, handler: CommandHandler[TCommand, TResult]) -> None:
        self.handler = handler
        self.published_events: list[DomainEvent] = []
        original = getattr(handler, "add_event", None)
        if original is not None:
            self._original_add_event = original

            def capture(event: DomainEvent) -> None:
                self._capture_event(event)

            handler.add_event = capture  # type: ignore[attr-defined]

    async def execute(self, command: TCommand) -> Result[TResult]:
        return await self.handler.handle(command)

    def _capture_event(self, event: DomainEvent) -> None:
        # Forward first: if the handler refuses the event, it was not published.
        if hasattr(self, "_original_add_event"):
            self._original_add_event(event)
        self.published_events.append(event)

    def assert_events_published(self, count: int) -> None:
        assert len(self.published_events) == count, (
            f"Expected {count} events, got {len(self.published_events)}"
        )

    def assert_event_published(self, event_type: type[DomainEvent]) -> None:
        assert any(isinstance(event, event_type) for event in self.published_events), (
            f"Expected event of type {event_type.__name__}, got "
            f"{[type(event).__name__ for event in self.published_events]}"
        )


class QueryTestHarness(Generic[TQuery, TResult]):
    def __init__(self, handler: QueryHandler[TQuery, TResult]) -> None:
        self.handler = handler
        self._originals: dict[str, Any] = {}

    async def execute(self, query: TQuery) -> Result[TResult]:
        return await self.handler.handle(query)

    def mock_read_model_service(
        self, mock_service: Any = None, method_name: str = "query", return_value: Any = None
    ) -> None:
        """Make ``handler.read_model_service.<method_name>`` return ``return_value``.

        ``mock_service`` is accepted for the seed's signature and ignored: the handler's own
        service is patched, because that is the object the handler calls.
        """
        service = getattr(self.handler, "read_model_service", None)
        if service is None:
            raise ValueError("Handler does not have a read_model_service attribute")
        if method_name not in self._originals:
            self._originals[method_name] = service.__dict__.get(method_name)

        async def mock_method(*args: Any, **kwargs: Any) -> Any:
            return return_value

        setattr(service, method_name, mock_method)

    def restore_read_model_service(self, method_name: str) -> None:
        if method_name not in self._originals:
            raise ValueError(f"Method {method_name} was not mocked")
        service = self.handler.read_model_service  # type: ignore[attr-defined]
        original = self._originals.pop(method_name)
        if original is None:
            delattr(service, method_name)  # back to the class's method
        else:
            setattr(service, method_name, original)


class EventStoreTestHarness:
    def __init__(self, event_store: EventStore) -> None:
        self.event_store = event_store
        self.stored_events: list[DomainEvent] = []

    async def append_event(self, event: DomainEvent) -> None:
        await self.event_store.append(event)
        self.stored_events.append(event)

    async def get_events(self, aggregate_id: str) -> list[DomainEvent]:
        return await self.event_store.get_events(aggregate_id)

    def assert_events_stored(self, count: int) -> None:
        assert len(self.stored_events) == count, (
            f"Expected {count} events, got {len(self.stored_events)}"
        )

    def assert_event_stored(self, event_type: type[DomainEvent]) -> None:
        assert any(isinstance(event, event_type) for event in self.stored_events), (
            f"Expected event of type {event_type.__name__}"
        )


class ProjectionTest(Generic[TReadModel, TEvent]):
    """Applies events straight to a projection (no checkpoints) and checks the result."""

    def __init__(self, projection: Projection[TReadModel, TEvent]) -> None:
        self.projection = projection

    async def apply_event(self, event: TEvent) -> TReadModel | None:
        return await self.projection.apply(event)

    async def apply_events(self, events: Sequence[TEvent]) -> list[TReadModel | None]:
        return [await self.projection.apply(event) for event in events]

    def assert_read_model_matches(
        self, read_model: TReadModel, expected_values: dict[str, Any]
    ) -> None:
        """Keys are attributes of the model, or keys of its ``data`` when no attribute has
        that name (so ``{"name": ...}`` works on a ``ReadModel``)."""
        data = getattr(read_model, "data", None)
        for key, expected in expected_values.items():
            if hasattr(read_model, key):
                actual = getattr(read_model, key)
            elif isinstance(data, dict):
                actual = data.get(key)
            else:
                actual = None
            assert actual == expected, f"Expected {key}={expected!r}, got {actual!r}"
