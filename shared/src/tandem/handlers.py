"""Handler base classes: the write side's units of work.

A handler returns a :class:`~tandem.result.Result`; exceptions raised inside (typed ones from
:mod:`tandem.errors`, or anything else) are turned into failures by the transactional handlers
here and, for plain handlers, by the mediator, so a route never sees a raw exception.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from tandem.errors import TandemError, error_from_exception
from tandem.event_store.protocol import EventStore, OutgoingCommit
from tandem.events import DomainEvent
from tandem.result import Failure, Result, Success

TCommand = TypeVar("TCommand")
TQuery = TypeVar("TQuery")
TResult = TypeVar("TResult")
TEvent = TypeVar("TEvent", bound=DomainEvent)

logger = logging.getLogger(__name__)


class CommandHandler(ABC, Generic[TCommand, TResult]):
    @abstractmethod
    async def handle(self, command: TCommand) -> Result[TResult]: ...


class QueryHandler(ABC, Generic[TQuery, TResult]):
    @abstractmethod
    async def handle(self, query: TQuery) -> Result[TResult]: ...


class EventHandler(ABC, Generic[TEvent]):
    """Reacts to an event. It raises on failure (no Result): the caller decides between retry,
    dead letter and gap healing, and must not lose the event."""

    @abstractmethod
    async def handle(self, event: TEvent) -> None: ...


@runtime_checkable
class UnitOfWork(Protocol):
    """Scope of one command's non-event-store writes. ``async with`` opens it; the handler
    calls ``commit`` on success and ``rollback`` otherwise."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class NullUnitOfWork:
    """For handlers whose only write is the event store (whose append is itself atomic)."""

    committed = False
    rolled_back = False

    async def __aenter__(self) -> NullUnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self.committed = True

    async def rollback(self) -> None:
        self.rolled_back = True


Outbox = Callable[[OutgoingCommit], None]
"""Takes a commit just appended, to publish it soon (the runtime's ``OutboxPublisher.submit``).
It never blocks or fails: the commit is durable and unpublished in the event store, which the
relay republishes from, so a commit the outbox drops is late, never lost."""


class ProjectionApplier(Protocol):
    """What the command handler needs from ``tandem``'s ``ProjectionService``."""

    async def apply_event(
        self,
        event: DomainEvent,
        *,
        event_type: str | None = None,
        read_model_type: str | None = None,
    ) -> object: ...


def _failure(exc: Exception) -> Failure[Any]:
    if not isinstance(exc, TandemError):
        logger.exception("command handler failed", exc_info=exc)
    return Failure(error_from_exception(exc))


class TransactionalCommandHandler(CommandHandler[TCommand, TResult]):
    """Runs :meth:`_handle` inside a unit of work: commit on success, rollback otherwise.

    ``_handle`` may return a plain value (wrapped in ``Success``) or a ``Result``; a ``Failure``
    rolls back like an exception does.
    """

    def __init__(self, unit_of_work_factory: Callable[[], UnitOfWork]) -> None:
        self.unit_of_work_factory = unit_of_work_factory

    @abstractmethod
    async def _handle(self, command: TCommand, uow: UnitOfWork) -> TResult | Result[TResult]: ...

    async def _before_commit(self, command: TCommand, uow: UnitOfWork) -> None:
        """Hook for writes that must succeed for the unit of work to commit."""

    async def handle(self, command: TCommand) -> Result[TResult]:
        uow = self.unit_of_work_factory()
        try:
            async with uow:
                try:
                    outcome = await self._handle(command, uow)
                    if isinstance(outcome, Result) and outcome.is_failure():
                        await uow.rollback()
                        return outcome
                    await self._before_commit(command, uow)
                except BaseException:
                    await uow.rollback()
                    raise
                await uow.commit()
        except Exception as exc:
            return _failure(exc)
        return outcome if isinstance(outcome, Result) else Success(outcome)


class EventSourcingReadModelCommandHandler(TransactionalCommandHandler[TCommand, TResult]):
    """Collects events during ``_handle``, appends them, then updates read models in process.

    Unlike the seed, pending events live in a :class:`~contextvars.ContextVar` set for each
    ``handle`` call, so one handler instance can serve concurrent commands (each runs in its own
    task and so its own context) without one command storing another's events.

    Events are appended per aggregate, before the unit of work commits, with
    ``expected_version = first_event.version - 1`` (a fresh event's default version 1 means
    "new stream"); set ``check_expected_version = False`` to append after whatever is there.
    Projections run after the commit; if one fails the command still succeeded (its events are
    stored), so the error is logged and the projector heals the read model from the stream.

    With an ``outbox`` each appended commit is handed to it, exactly as the runtime's aggregate
    handler does, so events written through this handler reach Kafka by the same fast path
    (and, without one, by the relay, since every commit is stored unpublished).
    """

    check_expected_version = True

    def __init__(
        self,
        unit_of_work_factory: Callable[[], UnitOfWork],
        event_store: EventStore,
        projection_service: ProjectionApplier,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(unit_of_work_factory)
        self.event_store = event_store
        self.projection_service = projection_service
        self.outbox = outbox
        self._pending: ContextVar[list[DomainEvent] | None] = ContextVar(
            f"tandem_pending_events_{id(self)}", default=None
        )
        self._stored: ContextVar[list[DomainEvent] | None] = ContextVar(
            f"tandem_stored_events_{id(self)}", default=None
        )

    def add_event(self, event: DomainEvent) -> None:
        pending = self._pending.get()
        if pending is None:
            raise RuntimeError("add_event() is only valid while handle() runs")
        pending.append(event)

    @property
    def events(self) -> list[DomainEvent]:
        """The current command's pending events (empty outside ``handle``)."""
        return list(self._pending.get() or ())

    async def handle(self, command: TCommand) -> Result[TResult]:
        pending_token = self._pending.set([])
        stored_token = self._stored.set([])
        try:
            result = await super().handle(command)
            if result.is_success():
                for event in self._stored.get() or ():
                    await self._project(event)
            return result
        finally:
            self._pending.reset(pending_token)
            self._stored.reset(stored_token)

    async def _before_commit(self, command: TCommand, uow: UnitOfWork) -> None:
        stored = self._stored.get()
        assert stored is not None  # set by handle()
        for batch in _by_aggregate(self._pending.get() or []):
            expected = batch[0].version - 1 if self.check_expected_version else None
            new_version = await self.event_store.append(batch, expected_version=expected)
            first = new_version - len(batch) + 1
            commit = [
                e if e.version == first + i else e.model_copy(update={"version": first + i})
                for i, e in enumerate(batch)
            ]
            stored.extend(commit)
            if self.outbox is not None:
                self.outbox(OutgoingCommit.of(commit))

    async def _project(self, event: DomainEvent) -> None:
        try:
            await self.projection_service.apply_event(event)
        except Exception:
            logger.exception(
                "inline projection failed; the projector will catch up",
                extra={"event_type": event.event_type, "aggregate_id": event.aggregate_id},
            )


def _by_aggregate(events: list[DomainEvent]) -> list[list[DomainEvent]]:
    groups: dict[str, list[DomainEvent]] = {}
    for event in events:
        groups.setdefault(event.aggregate_id, []).append(event)
    return list(groups.values())


__all__ = [
    "CommandHandler",
    "EventHandler",
    "EventSourcingReadModelCommandHandler",
    "NullUnitOfWork",
    "Outbox",
    "ProjectionApplier",
    "QueryHandler",
    "TransactionalCommandHandler",
    "UnitOfWork",
]
