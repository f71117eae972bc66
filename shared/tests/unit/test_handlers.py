import asyncio
import uuid
from decimal import Decimal
from types import TracebackType
from typing import Any

import pytest
from domain_fixtures import ProductPriceChanged, ProductRegistered
from tandem.errors import DomainError
from tandem.event_store import InMemoryEventStore
from tandem.events import DomainEvent
from tandem.handlers import (
    EventSourcingReadModelCommandHandler,
    NullUnitOfWork,
    TransactionalCommandHandler,
    UnitOfWork,
)
from tandem.messages import Command
from tandem.result import Failure, Result

pytestmark = pytest.mark.unit


class RecordingUnitOfWork:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def __aenter__(self) -> "RecordingUnitOfWork":
        self.log.append("enter")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log.append("exit")

    async def commit(self) -> None:
        self.log.append("commit")

    async def rollback(self) -> None:
        self.log.append("rollback")


class RecordingProjections:
    def __init__(self, fail: bool = False) -> None:
        self.applied: list[DomainEvent] = []
        self.fail = fail

    async def apply_event(
        self,
        event: DomainEvent,
        *,
        event_type: str | None = None,
        read_model_type: str | None = None,
    ) -> None:
        if self.fail:
            raise RuntimeError("read model down")
        self.applied.append(event)


class Register(Command[str]):
    name: str
    price: Decimal = Decimal(1)
    delay: float = 0.0
    fail_with: str | None = None


class Outcome(Command[str]):
    mode: str


class OutcomeHandler(TransactionalCommandHandler[Outcome, str]):
    async def _handle(self, command: Outcome, uow: UnitOfWork) -> str | Result[str]:
        if command.mode == "raise":
            raise DomainError("nope", "refused")
        if command.mode == "failure":
            return Failure(DomainError("soft", "soft failure").to_error())
        return "ok"


class RegisterHandler(EventSourcingReadModelCommandHandler[Register, str]):
    async def _handle(self, command: Register, uow: UnitOfWork) -> str:
        product_id = f"{command.name}-{uuid.uuid4().hex[:6]}"
        self.add_event(
            ProductRegistered(
                aggregate_id=product_id,
                aggregate_type="Product",
                name=command.name,
                price=command.price,
            )
        )
        await asyncio.sleep(command.delay)  # let other commands interleave
        self.add_event(
            ProductPriceChanged(
                aggregate_id=product_id,
                aggregate_type="Product",
                version=2,
                price=command.price + 1,
            )
        )
        if command.fail_with:
            raise DomainError(command.fail_with, "refused after recording")
        return product_id


@pytest.mark.parametrize(
    ("mode", "log", "code"),
    [
        ("ok", ["enter", "commit", "exit"], None),
        ("raise", ["enter", "rollback", "exit"], "nope"),
        ("failure", ["enter", "rollback", "exit"], "soft"),
    ],
)
async def test_transactional_handler_commits_or_rolls_back(
    mode: str, log: list[str], code: str | None
) -> None:
    uow = RecordingUnitOfWork()
    result = await OutcomeHandler(lambda: uow).handle(Outcome(mode=mode))
    assert uow.log == log
    if code is None:
        assert result.value == "ok"
    else:
        assert result.error.code == code


async def test_events_are_stored_then_projected() -> None:
    store, projections = InMemoryEventStore(), RecordingProjections()
    handler = RegisterHandler(NullUnitOfWork, store, projections)
    result = await handler.handle(Register(name="lamp"))
    product_id = result.value
    stored = await store.get_events(product_id)
    assert [type(e) for e in stored] == [ProductRegistered, ProductPriceChanged]
    assert projections.applied == stored
    assert handler.events == []  # nothing leaks out of handle()


async def test_concurrent_commands_on_one_handler_keep_their_events_apart() -> None:
    store, projections = InMemoryEventStore(), RecordingProjections()
    handler = RegisterHandler(NullUnitOfWork, store, projections)
    commands = [
        Register(name=f"p{i}", price=Decimal(i + 1), delay=(i % 5) / 500) for i in range(40)
    ]
    results = await asyncio.gather(*(handler.handle(c) for c in commands))
    for command, result in zip(commands, results, strict=True):
        events = await store.get_events(result.value)
        assert [e.version for e in events] == [1, 2]
        assert all(e.aggregate_id == result.value for e in events)
        assert events[0].price == command.price  # type: ignore[attr-defined]
    assert len(projections.applied) == 80


async def test_failed_command_stores_and_projects_nothing() -> None:
    store, projections = InMemoryEventStore(), RecordingProjections()
    uow = RecordingUnitOfWork()
    handler = RegisterHandler(lambda: uow, store, projections)
    result = await handler.handle(Register(name="x", fail_with="rule"))
    assert result.error.code == "rule"
    assert await store.read_all() == []
    assert projections.applied == []
    assert "rollback" in uow.log


async def test_version_conflict_is_a_409_failure_and_rolls_back() -> None:
    store = InMemoryEventStore()

    class Conflicting(EventSourcingReadModelCommandHandler[Register, str]):
        async def _handle(self, command: Register, uow: UnitOfWork) -> str:
            self.add_event(
                ProductRegistered(aggregate_id="same", aggregate_type="Product", name="n", price=1)
            )
            return "same"

    uow = RecordingUnitOfWork()
    handler = Conflicting(lambda: uow, store, RecordingProjections())
    assert (await handler.handle(Register(name="a"))).is_success()
    result = await handler.handle(Register(name="b"))
    assert (result.error.code, result.error.status_code) == ("concurrency_conflict", 409)
    assert uow.log[-2:] == ["rollback", "exit"]


async def test_projection_failure_after_store_keeps_the_success() -> None:
    store = InMemoryEventStore()
    handler = RegisterHandler(NullUnitOfWork, store, RecordingProjections(fail=True))
    result = await handler.handle(Register(name="lamp"))
    assert result.is_success()
    assert len(await store.get_events(result.value)) == 2


async def test_monkeypatched_add_event_still_reaches_the_store() -> None:
    """The seed's CommandTestHarness replaces ``handler.add_event`` on the instance."""
    store = InMemoryEventStore()
    handler = RegisterHandler(NullUnitOfWork, store, RecordingProjections())
    captured: list[DomainEvent] = []
    original = handler.add_event

    def capture(event: DomainEvent) -> None:
        captured.append(event)
        original(event)

    handler.add_event = capture  # type: ignore[method-assign]
    result = await handler.handle(Register(name="lamp"))
    assert len(captured) == 2
    assert len(await store.get_events(result.value)) == 2


def test_add_event_outside_handle_is_a_bug() -> None:
    handler = RegisterHandler(NullUnitOfWork, InMemoryEventStore(), RecordingProjections())
    with pytest.raises(RuntimeError, match="handle"):
        handler.add_event(
            ProductRegistered(aggregate_id="a", aggregate_type="Product", name="n", price=1)
        )


async def test_unchecked_mode_appends_after_current() -> None:
    store = InMemoryEventStore()

    class Append(EventSourcingReadModelCommandHandler[Register, str]):
        check_expected_version = False

        async def _handle(self, command: Register, uow: UnitOfWork) -> str:
            self.add_event(ProductPriceChanged(aggregate_id="p", aggregate_type="Product", price=1))
            return "p"

    projections = RecordingProjections()
    handler: Any = Append(NullUnitOfWork, store, projections)
    await handler.handle(Register(name="a"))
    await handler.handle(Register(name="b"))
    assert [e.version for e in projections.applied] == [1, 2]
