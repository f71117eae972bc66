"""The aggregate command handler: load, let the aggregate decide, append one commit, queue it.

One :class:`AggregateCommandHandler` per declared :class:`~tandem.app.AggregateSpec` serves
every command of that aggregate type, through the route's ``create`` or ``decide``. It is a
library :class:`~tandem.handlers.CommandHandler` (a ``Result`` out, typed errors inside), and it
reaches the event store and the outbox exactly as the seed's
``EventSourcingReadModelCommandHandler`` does: one append per aggregate, then the commit to the
:data:`~tandem.handlers.Outbox`. It never talks HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

from tandem.aggregate import AggregateRepository, AggregateRoot
from tandem.app import AggregateSpec, CommandAccepted, CommandRoute
from tandem.errors import ConcurrencyError, DomainError, TandemError, error_from_exception
from tandem.event_store import OutgoingCommit
from tandem.handlers import CommandHandler, Outbox
from tandem.messages import Command
from tandem.result import Failure, Result, Success

logger = logging.getLogger(__name__)
# Errors that mean "MongoDB did not answer", as opposed to "MongoDB said no".
STORE_DOWN = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


class ServiceUnavailable(TandemError):
    """The event store cannot be reached (or is not ready): 503, retry later."""

    status_code = 503

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StoreGate:
    """Shut until the event store's indexes exist: writing before the unique index exists could
    let two writers share a version. One gate per process, opened by the composition root."""

    def __init__(self) -> None:
        self.ready = False

    def check(self) -> None:
        if not self.ready:
            raise ServiceUnavailable(
                "service_starting", "the event store is not ready yet (indexes are being created)"
            )


def version_conflict(
    aggregate_type: str, aggregate_id: str, expected: int | None, current: int
) -> DomainError:
    """409 carrying the current version, so the client can re-read and retry."""
    return DomainError(
        "concurrency_conflict",
        f"{aggregate_type.lower()} {aggregate_id!r} is at version {current}, not {expected}",
        status_code=409,
        details={"id": aggregate_id, "expected_version": expected, "current_version": current},
    )


def already_exists(aggregate_type: str, aggregate_id: str, current: int) -> DomainError:
    """409 for a create whose id has a stream already: the client picked a taken id (or
    retried a create without an Idempotency-Key), which is not a race on a version."""
    return DomainError(
        "already_exists",
        f"{aggregate_type.lower()} {aggregate_id!r} exists already (at version {current})",
        status_code=409,
        details={"id": aggregate_id, "current_version": current},
    )


class AggregateCommandHandler(CommandHandler[Command[Any], CommandAccepted]):
    """Every command of one aggregate type; register it on the mediator for each command."""

    def __init__(
        self,
        spec: AggregateSpec,
        repository: AggregateRepository[AggregateRoot],
        outbox: Outbox,
        gate: StoreGate,
    ) -> None:
        self.spec = spec
        self._repository = repository
        self._outbox = outbox
        self._gate = gate
        self._routes: dict[type[Command[Any]], CommandRoute] = {
            route.command: route for route in spec.commands
        }

    @property
    def command_types(self) -> tuple[type[Command[Any]], ...]:
        return tuple(self._routes)

    async def handle(self, command: Command[Any]) -> Result[CommandAccepted]:
        try:
            return Success(await self._handle(command))
        except Exception as exc:
            if not isinstance(exc, TandemError):
                logger.exception("command %s failed", type(command).__name__, exc_info=exc)
            return Failure(error_from_exception(exc))

    async def _handle(self, command: Command[Any]) -> CommandAccepted:
        route = self._routes[type(command)]
        if route.create is not None:
            self._gate.check()
            aggregate = route.create(command)
            self._stamp(aggregate, command)
            return await self._save(aggregate, expected=None, creating=True)
        assert route.decide is not None  # CommandRoute holds exactly one of the two
        return await self._change(command, route)

    async def _change(self, command: Command[Any], route: CommandRoute) -> CommandAccepted:
        """Decide on the aggregate as this process last saw it, when it has it: no read. Only
        an appended commit proves that state current (the unique version would have refused
        it otherwise); a rejection, a no-op or a version mismatch on it may be stale, so
        those are decided again on a fresh load, as is a conflict."""
        self._gate.check()
        assert route.decide is not None
        aggregate_id: str = getattr(command, self.spec.id_field)
        expected: int | None = getattr(command, "expected_version", None)
        cached = self._repository.cached(aggregate_id)
        if cached is not None and (expected is None or expected == cached.version):
            try:
                route.decide(cached, command)
            except DomainError:
                cached = None
            if cached is not None and cached.pending_events:
                self._stamp(cached, command)
                try:
                    return await self._append(cached)
                except ConcurrencyError:
                    pass  # another process appended since: the repository forgot it
        aggregate = await self._load(aggregate_id, expected)
        route.decide(aggregate, command)
        self._stamp(aggregate, command)
        return await self._save(aggregate, expected)

    @staticmethod
    def _stamp(aggregate: AggregateRoot, command: Command[Any]) -> None:
        aggregate.stamp_pending(
            correlation_id=command.correlation_id, causation_id=command.command_id
        )

    async def _load(self, aggregate_id: str, expected: int | None) -> AggregateRoot:
        self._gate.check()
        try:
            aggregate = await self._repository.load(aggregate_id)
        except STORE_DOWN as exc:
            raise _store_down(exc) from exc
        if expected is not None and expected != aggregate.version:
            raise version_conflict(
                self.spec.aggregate_type, aggregate_id, expected, aggregate.version
            )
        return aggregate

    async def _save(
        self, aggregate: AggregateRoot, expected: int | None, *, creating: bool = False
    ) -> CommandAccepted:
        if not aggregate.pending_events:  # nothing changed: the current version, no append
            return CommandAccepted(id=aggregate.id, version=aggregate.version)
        try:
            return await self._append(aggregate)
        except ConcurrencyError as exc:
            if creating:  # the id has a stream already: not a race on a version
                raise already_exists(
                    self.spec.aggregate_type, aggregate.id, exc.actual_version
                ) from None
            raise version_conflict(
                self.spec.aggregate_type, aggregate.id, expected, exc.actual_version
            ) from None

    async def _append(self, aggregate: AggregateRoot) -> CommandAccepted:
        try:
            events = await self._repository.save(aggregate)
        except STORE_DOWN as exc:
            raise _store_down(exc) from exc
        self._outbox(OutgoingCommit.of(events))
        return CommandAccepted(id=aggregate.id, version=events[-1].version)


def _store_down(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        "event_store_unavailable", f"the event store is unreachable ({type(exc).__name__})"
    )
