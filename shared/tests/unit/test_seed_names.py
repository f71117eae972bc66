"""Every class and method the seed document (cqrs_read_model_integration.md) names exists with
that name, is importable from the public package it belongs to, is callable, and is exercised
by some test in this suite.

The list is hard-coded on purpose: the seed lives outside the repository, and renaming one of
these names would break every user who followed the document.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from tandem import (
    Command,
    CommandHandler,
    DomainEvent,
    EventDispatcher,
    EventHandler,
    InMemoryReadModelRepository,
    Projection,
    ReadModel,
    ReadModelId,
    ReadModelQuery,
    ReadModelQueryHandler,
    ReadModelService,
    SearchQuery,
    Success,
)
from tandem.testing import CommandTestHarness, QueryTestHarness

pytestmark = pytest.mark.unit

# (module, public name, members the seed calls on it). Instance attributes the seed reads
# (``read_model_service``, ``mapper``) are checked on an instance in a test below.
SEED_NAMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("tandem", "CommandHandler", ("handle",)),
    ("tandem", "QueryHandler", ("handle",)),
    ("tandem", "EventHandler", ("handle",)),
    ("tandem", "TransactionalCommandHandler", ("handle", "_handle")),
    ("tandem", "ReadModelQueryHandler", ("_to_read_model_query", "handle")),
    ("tandem", "ProjectionEventHandler", ("handle",)),
    ("tandem", "EventSourcingReadModelCommandHandler", ("add_event", "handle")),
    (
        "tandem.api",
        "CQRSEndpointFactory",
        ("create_command_endpoint", "create_query_endpoint", "create_websocket_endpoint"),
    ),
    (
        "tandem.testing",
        "CommandTestHarness",
        ("execute", "_capture_event", "assert_events_published", "assert_event_published"),
    ),
    (
        "tandem.testing",
        "QueryTestHarness",
        ("execute", "mock_read_model_service", "restore_read_model_service"),
    ),
    (
        "tandem.testing",
        "EventStoreTestHarness",
        ("append_event", "get_events", "assert_events_stored", "assert_event_stored"),
    ),
    (
        "tandem.testing",
        "ProjectionTest",
        ("apply_event", "apply_events", "assert_read_model_matches"),
    ),
    (
        "tandem.testing",
        "CQRSTestContainer",
        (
            "register_command_handler",
            "register_query_handler",
            "create_read_model_repository",
            "create_projection_service",
            "get_command_test_harness",
            "get_query_test_harness",
            "get_event_store_test_harness",
            "clean",
        ),
    ),
    ("tandem", "get_mediator", ()),
    ("tandem.api", "get_mediator", ()),
    (
        "tandem",
        "Mediator",
        ("register_command_handler", "register_query_handler", "execute_command", "execute_query"),
    ),
    ("tandem", "EventDispatcher", ("subscribe", "unsubscribe")),
    ("tandem", "Result", ()),
    ("tandem", "Success", ()),
    ("tandem", "Failure", ()),
    ("tandem", "Error", ()),
    ("tandem", "ReadModel", ()),
    ("tandem", "ReadModelId", ()),
    ("tandem", "ReadModelQuery", ()),
    ("tandem", "SearchQuery", ()),
    ("tandem", "PaginatedResult", ()),
    ("tandem", "ReadModelService", ("query",)),
    ("tandem", "ReadModelRepository", ("save", "get_by_id", "clear")),
    ("tandem", "InMemoryReadModelRepository", ("save", "get_by_id", "clear")),
    ("tandem", "InMemoryProjectionRepository", ()),
    ("tandem", "ProjectionService", ("register_projection", "apply_event")),
    ("tandem", "Projection", ("apply",)),
    ("tandem", "InMemoryEventStore", ("append", "get_events")),
    ("tandem", "EventStore", ("append", "get_events")),
    ("tandem.testing", "MockUnitOfWork", ()),
    ("tandem", "UnitOfWork", ()),
    ("tandem", "Command", ()),
    ("tandem", "Query", ()),
    ("tandem", "DomainEvent", ("to_dict",)),
]

_TESTS = Path(__file__).resolve().parents[1]


_DIRECT_USES = "# Direct uses of the names"


def _test_sources() -> str:
    """All test code, leaving out the table above (naming a name is not exercising it)."""
    this = Path(__file__).resolve()
    texts = []
    for path in sorted(_TESTS.rglob("*.py")):
        text = path.read_text()
        if path.resolve() == this:
            text = text[text.rindex(_DIRECT_USES) :]
        texts.append(text)
    return "\n".join(texts)


@pytest.mark.parametrize(
    ("module", "name", "members"), SEED_NAMES, ids=[f"{m}.{n}" for m, n, _ in SEED_NAMES]
)
def test_seed_name_is_public_and_callable(module: str, name: str, members: tuple[str, ...]) -> None:
    package = importlib.import_module(module)
    obj = getattr(package, name)
    assert callable(obj), f"{module}.{name} is not callable"
    assert name in getattr(package, "__all__", [name]), f"{name} missing from {module}.__all__"
    for member in members:
        attribute = inspect.getattr_static(obj, member, None)
        assert attribute is not None, f"{module}.{name}.{member} does not exist"
        assert callable(getattr(obj, member)), f"{module}.{name}.{member} is not callable"


def test_every_seed_name_is_exercised_by_some_test() -> None:
    sources = _test_sources()
    missing = [
        f"{name}.{member}" if member else name
        for _, name, members in SEED_NAMES
        for member in ("", *members)
        if (member or name) not in sources
    ]
    assert missing == [], f"no test mentions: {missing}"


# Direct uses of the names that the rest of the suite reaches only indirectly.


class Note(ReadModel):
    pass


class NoteWritten(DomainEvent):
    text: str


class NoteProjection(Projection[Note, NoteWritten]):
    async def apply(self, event: NoteWritten) -> Note | None:
        note = Note(
            id=ReadModelId(value=event.aggregate_id),
            version=event.version,
            data={"text": event.text},
        )
        await self.repository.save(note)
        return note


class NoteQueryHandler(ReadModelQueryHandler[ReadModelId, Any, Note]):
    def _to_read_model_query(self, query: ReadModelId) -> ReadModelQuery | SearchQuery:
        return ReadModelQuery(id=query)


async def test_projection_apply_and_query_handler_attributes_directly() -> None:
    repository = InMemoryReadModelRepository(Note)
    projection = NoteProjection(repository, NoteWritten)
    event = NoteWritten(aggregate_id="n-1", aggregate_type="Note", text="hi")
    assert event.to_dict()["text"] == "hi"
    applied = await projection.apply(event)
    assert applied is not None
    assert (await repository.get_by_id("n-1")) == applied

    service = ReadModelService(repository)
    found = await service.query(ReadModelQuery(id=ReadModelId(value="n-1")))
    assert found.is_success()

    handler = NoteQueryHandler(service, mapper=lambda note: note.data["text"])
    assert handler.read_model_service is service
    assert handler.mapper(applied) == "hi"
    assert isinstance(handler._to_read_model_query(ReadModelId(value="n-1")), ReadModelQuery)

    harness = QueryTestHarness(handler)
    assert (await harness.execute(ReadModelId(value="n-1"))).value == "hi"
    harness.mock_read_model_service(
        None, "query", Success(applied.model_copy(update={"data": {"text": "mock"}}))
    )
    assert (await harness.execute(ReadModelId(value="n-1"))).value == "mock"
    harness.restore_read_model_service("query")
    assert (await harness.execute(ReadModelId(value="n-1"))).value == "hi"

    await repository.clear()
    assert await repository.get_by_id("n-1") is None


class NoteMailer(EventHandler[NoteWritten]):
    """The seed's ``ProjectionEventHandler`` is one kind of ``EventHandler``; this is another."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.sent: list[str] = []
        self.fail_on = fail_on

    async def handle(self, event: NoteWritten) -> None:
        if event.text == self.fail_on:
            raise RuntimeError("mail server down")
        self.sent.append(f"{event.aggregate_id}: {event.text}")


async def test_event_handler_subclass_handles_events_and_raises_on_failure() -> None:
    class Forgetful(EventHandler[NoteWritten]):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Forgetful()  # type: ignore[abstract]

    mailer = NoteMailer(fail_on="boom")
    await mailer.handle(NoteWritten(aggregate_id="n-1", aggregate_type="Note", text="hi"))
    assert mailer.sent == ["n-1: hi"]
    # No Result: a failure propagates, so the caller can retry instead of losing the event.
    with pytest.raises(RuntimeError, match="mail server down"):
        await mailer.handle(NoteWritten(aggregate_id="n-2", aggregate_type="Note", text="boom"))
    assert mailer.sent == ["n-1: hi"]

    dispatcher = EventDispatcher()
    await dispatcher.subscribe("NoteWritten", mailer.handle)
    await dispatcher.publish(NoteWritten(aggregate_id="n-3", aggregate_type="Note", text="yo"))
    assert mailer.sent == ["n-1: hi", "n-3: yo"]


class WriteNote(Command[str]):
    text: str


class RecordingHandler(CommandHandler[WriteNote, str]):
    """A handler with its own ``add_event`` (not an event-sourcing one)."""

    def __init__(self) -> None:
        self.added: list[DomainEvent] = []

    def add_event(self, event: DomainEvent) -> None:
        self.added.append(event)

    async def handle(self, command: WriteNote) -> Success[str]:
        self.add_event(NoteWritten(aggregate_id="n", aggregate_type="Note", text=command.text))
        return Success(command.text)


async def test_command_harness_capture_event_forwards_then_records() -> None:
    handler = RecordingHandler()
    harness = CommandTestHarness(handler)
    direct = NoteWritten(aggregate_id="n", aggregate_type="Note", text="direct")
    harness._capture_event(direct)
    assert handler.added == [direct]
    assert harness.published_events == [direct]
    assert (await harness.execute(WriteNote(text="via handle"))).value == "via handle"
    assert [e.text for e in harness.published_events] == ["direct", "via handle"]
    assert harness.published_events == handler.added
    harness.assert_events_published(2)
