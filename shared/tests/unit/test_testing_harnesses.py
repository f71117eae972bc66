import pytest
from tandem import (
    Command,
    CommandHandler,
    DomainEvent,
    EventSourcingReadModelCommandHandler,
    ReadModel,
    ReadModelId,
    Success,
    UnitOfWork,
)
from tandem.testing import (
    CommandTestHarness,
    CQRSTestContainer,
    EventStoreTestHarness,
    MockUnitOfWork,
)

pytestmark = pytest.mark.unit


class Note(ReadModel):
    pass


class AddNote(Command[str]):
    note_id: str
    fail: bool = False


class NoteAdded(DomainEvent):
    pass


class AddNoteHandler(EventSourcingReadModelCommandHandler[AddNote, str]):
    async def _handle(self, command: AddNote, uow: UnitOfWork) -> str:
        self.add_event(NoteAdded(aggregate_id=command.note_id, aggregate_type="Note"))
        if command.fail:
            raise RuntimeError("refused")
        return command.note_id


class Plain(CommandHandler[AddNote, str]):
    async def handle(self, command: AddNote):
        return Success(command.note_id)


async def test_command_harness_captures_events_and_uow_outcome():
    container = CQRSTestContainer()
    uows: list[MockUnitOfWork] = []

    def factory() -> MockUnitOfWork:
        uows.append(MockUnitOfWork())
        return uows[-1]

    handler = AddNoteHandler(factory, container.event_store, container.create_projection_service())
    container.register_command_handler(AddNote, handler)
    harness = container.get_command_test_harness(AddNote)
    assert (await harness.execute(AddNote(note_id="n1"))).value == "n1"
    harness.assert_events_published(1)
    harness.assert_event_published(NoteAdded)
    assert uows[0].entered
    assert uows[0].committed
    assert not uows[0].rolled_back
    assert (await harness.execute(AddNote(note_id="n2", fail=True))).is_failure()
    assert uows[1].rolled_back
    assert not uows[1].committed
    with pytest.raises(AssertionError, match="Expected 5 events"):
        harness.assert_events_published(5)
    with pytest.raises(AssertionError):
        harness.assert_event_published(DomainEvent.__class__)  # type: ignore[arg-type]
    assert [e.aggregate_id for e in await container.event_store.get_events("n1")] == ["n1"]
    assert await container.event_store.get_events("n2") == []


async def test_command_harness_on_plain_handler():
    harness = CommandTestHarness(Plain())
    assert (await harness.execute(AddNote(note_id="x"))).value == "x"
    harness.assert_events_published(0)


async def test_event_store_harness():
    container = CQRSTestContainer()
    harness = container.get_event_store_test_harness()
    assert isinstance(harness, EventStoreTestHarness)
    await harness.append_event(NoteAdded(aggregate_id="a", aggregate_type="Note"))
    await harness.append_event(NoteAdded(aggregate_id="a", aggregate_type="Note", version=2))
    harness.assert_events_stored(2)
    harness.assert_event_stored(NoteAdded)
    assert [e.version for e in await harness.get_events("a")] == [1, 2]


async def test_container_clean_resets_everything():
    container = CQRSTestContainer()
    repo = container.create_read_model_repository(Note)
    service = container.create_projection_service()
    assert container.create_projection_service() is service
    await repo.save(Note(id=ReadModelId(value="n")))
    await service.projection_repository.set_version("P", "n", 3)
    container.register_command_handler(AddNote, Plain())
    old_mediator, old_store = container.mediator, container.event_store
    await container.clean()
    assert await repo.count() == 0
    assert await service.projection_repository.get_version("P", "n") == 0
    assert container.mediator is not old_mediator
    assert container.event_store is not old_store
    assert container.get_command_test_harness(AddNote) is None
    assert container.projection_service is None


def test_import_tandem_testing_does_not_import_pytest() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tandem, tandem.testing\n"
        "assert 'pytest' not in sys.modules, 'tandem.testing imported pytest'\n"
        "import tandem.testing.contracts\n"
        "assert 'pytest' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
