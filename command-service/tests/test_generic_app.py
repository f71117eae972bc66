"""The command runtime serves an app it has never heard of: a counter declared in this module.

In process, on an in-memory event store (no server; one test runs it on the real servers
and reads its topic): the routes come from the declaration
(`{route}{path}`, `{id}` named after the id field), the runtime stamps correlation and
causation ids, and every commit reaches the outbox and its aggregate type's topic. The seed's
``EventSourcingReadModelCommandHandler`` hands its commits to the same outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from pydantic import Field
from tandem.aggregate import AggregateRoot, applies
from tandem.app import AggregateSpec, App, CommandAccepted, CommandRoute
from tandem.auth import issue_token
from tandem.errors import DomainError
from tandem.event_store import InMemoryEventStore, OutgoingCommit, commit_id_for
from tandem.events import DomainEvent
from tandem.handlers import EventSourcingReadModelCommandHandler, NullUnitOfWork, UnitOfWork
from tandem.messages import Command
from tandem.runtime.command.bootstrap import Service, create_app
from tandem.runtime.command.settings import CommandServiceSettings


class TallyOpened(DomainEvent):
    pass


class TallyIncremented(DomainEvent):
    by: int


class Tally(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.count = 0

    @classmethod
    def open(cls, tally_id: str) -> Tally:
        tally = cls(tally_id)
        tally._record(TallyOpened)
        return tally

    def increment(self, by: int) -> None:
        if self.count + by > 10:
            raise DomainError("tally_full", "a tally counts to 10", status_code=409)
        self._record(TallyIncremented, by=by)

    @applies(TallyOpened)
    def _opened(self, event: TallyOpened) -> None:
        self.count = 0

    @applies(TallyIncremented)
    def _incremented(self, event: TallyIncremented) -> None:
        self.count += event.by


TallyId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")]


class OpenTally(Command[CommandAccepted]):
    tally_id: TallyId


class IncrementTally(Command[CommandAccepted]):
    tally_id: TallyId
    by: Annotated[int, Field(ge=1)] = 1
    expected_version: int | None = None


TALLIES = AggregateSpec(
    Tally,
    events=[TallyOpened, TallyIncremented],
    route="/api/tallies",
    id_field="tally_id",
    commands=[
        CommandRoute(OpenTally, "POST", create=lambda c: Tally.open(c.tally_id)),
        CommandRoute(
            IncrementTally,
            "POST",
            "/{id}/increment",
            decide=lambda t, c: t.increment(c.by),
        ),
    ],
)
TALLY_APP = App(name="tallies", aggregates=[TALLIES])


class Running:
    def __init__(self, client: httpx.AsyncClient, service: Service, token: str) -> None:
        self.client, self.service, self.token = client, service, token
        self.store = service.writer().event_store

    def auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


@pytest.fixture
async def tallies() -> AsyncIterator[Running]:
    """The runtime for the tally app alone; the gate is opened by hand (no lifespan, so no
    index creation and no Kafka connection)."""
    settings = CommandServiceSettings(environment="test", topic_prefix="t.")
    stores: dict[str, InMemoryEventStore] = {}
    app = create_app(
        settings, [TALLY_APP], lambda a: stores.setdefault(a.name, InMemoryEventStore())
    )
    service: Service = app.state.service
    service.gate.ready = True
    token = issue_token(settings, "tester", [TALLIES.scope], 60)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Running(client, service, token)
    await service.mongo.close()


@pytest.mark.unit
def test_names_come_from_the_declaration(tallies: Running) -> None:
    assert TALLIES.scope == "tallies:write"
    assert tallies.service.sink.topics == {"Tally": "t.tandem.tally.events"}
    assert tallies.service.writer().app.events_collection == "tallies_events"


@pytest.mark.unit
async def test_create_then_decide_through_the_generated_routes(tallies: Running) -> None:
    created = await tallies.client.post(
        "/api/tallies", json={"tally_id": "t-1"}, headers=tallies.auth()
    )
    assert created.status_code == 201
    assert created.headers["location"] == "/api/tallies/t-1"
    assert created.json() == {"id": "t-1", "version": 1}

    bumped = await tallies.client.post(
        "/api/tallies/t-1/increment",
        json={"by": 3},
        headers=tallies.auth(**{"If-Match": '"1"', "X-Correlation-ID": "corr-1"}),
    )
    assert bumped.status_code == 200, bumped.text
    assert bumped.json() == {"id": "t-1", "version": 2}
    empty = await tallies.client.post("/api/tallies/t-1/increment", headers=tallies.auth())
    assert empty.json() == {"id": "t-1", "version": 3}  # no body: the command's defaults

    events = await tallies.store.get_events("t-1")
    assert [type(e) for e in events] == [TallyOpened, TallyIncremented, TallyIncremented]
    assert events[1].correlation_id == "corr-1"
    # Every commit is in the outbox, unpublished until a publisher marks it.
    assert [c.commit_id for c in await tallies.store.list_unpublished()] == [
        commit_id_for("t-1", v) for v in (1, 2, 3)
    ]


@pytest.mark.unit
async def test_a_created_id_is_the_server_s_when_the_client_gives_none(tallies: Running) -> None:
    created = await tallies.client.post("/api/tallies", json={}, headers=tallies.auth())
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert created.headers["location"] == f"/api/tallies/{new_id}"


@pytest.mark.unit
async def test_creating_a_taken_id_is_409_already_exists_and_appends_nothing(
    tallies: Running,
) -> None:
    first = await tallies.client.post(
        "/api/tallies", json={"tally_id": "t-9"}, headers=tallies.auth()
    )
    assert first.status_code == 201, first.text
    again = await tallies.client.post(
        "/api/tallies", json={"tally_id": "t-9"}, headers=tallies.auth()
    )
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "already_exists"
    assert error["details"] == {"id": "t-9", "current_version": 1}
    assert "None" not in error["message"]
    assert [e.version for e in await tallies.store.get_events("t-9")] == [1]


@pytest.mark.unit
async def test_the_runtime_stamps_correlation_and_causation(tallies: Running) -> None:
    mediator = tallies.service.mediator
    opened = await mediator.execute_command(
        OpenTally(tally_id="t-2", correlation_id="c-1", command_id="k-1")
    )
    assert opened.is_success()
    [event] = await tallies.store.get_events("t-2")
    assert (event.correlation_id, event.causation_id) == ("c-1", "k-1")


@pytest.mark.unit
async def test_preconditions_errors_and_the_gate(tallies: Running) -> None:
    client, auth = tallies.client, tallies.auth
    await client.post("/api/tallies", json={"tally_id": "t-3"}, headers=auth())
    path = "/api/tallies/t-3/increment"

    stale = await client.post(path, json={"by": 1}, headers=auth(**{"If-Match": "5"}))
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["code"] == "concurrency_conflict"
    assert stale.json()["error"]["details"]["current_version"] == 1

    both = await client.post(
        path, json={"by": 1, "expected_version": 2}, headers=auth(**{"If-Match": "1"})
    )
    assert both.status_code == 409
    assert both.json()["error"]["code"] == "conflicting_preconditions"

    rule = await client.post(path, json={"by": 11}, headers=auth())
    assert (rule.status_code, rule.json()["error"]["code"]) == (409, "tally_full")

    server_set = await client.post(path, json={"command_id": "x"}, headers=auth())
    assert server_set.status_code == 422

    unknown = await client.post("/api/tallies/nope/increment", json={}, headers=auth())
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")

    assert (await client.post(path, json={})).status_code == 401
    tallies.service.gate.ready = False
    starting = await client.post(path, json={}, headers=auth())
    assert starting.status_code == 503
    assert starting.json()["error"]["code"] == "service_starting"
    assert "retry-after" in starting.headers


@pytest.mark.unit
async def test_openapi_and_asyncapi_describe_the_app(tallies: Running) -> None:
    spec = (await tallies.client.get("/openapi.json")).json()
    increment = spec["paths"]["/api/tallies/{tally_id}/increment"]["post"]
    assert {p["name"] for p in increment["parameters"]} >= {"tally_id", "If-Match"}
    assert "tallies:write" in increment["responses"]["403"]["description"]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= set(increment["responses"])
    create = spec["paths"]["/api/tallies"]["post"]
    assert "tally_id" not in create["requestBody"]["content"]["application/json"]["schema"].get(
        "required", []
    )
    document = (await tallies.client.get("/asyncapi.json")).json()
    assert document["channels"]["tallyEvents"]["address"] == "t.tandem.tally.events"
    assert set(document["components"]["messages"]) == {"TallyOpened", "TallyIncremented"}


@pytest.mark.unit
async def test_the_seed_handler_reaches_the_same_outbox() -> None:
    """``EventSourcingReadModelCommandHandler`` appends one commit per aggregate and hands
    each to its outbox, with the id the runtime's relay and publisher use."""
    store, outbox = InMemoryEventStore(), list[OutgoingCommit]()

    class NoProjections:
        async def apply_event(self, event: DomainEvent, **_: Any) -> object:
            return None

    class OpenTwice(EventSourcingReadModelCommandHandler[OpenTally, str]):
        async def _handle(self, command: OpenTally, uow: UnitOfWork) -> str:
            tally = Tally.open(command.tally_id)
            tally.increment(2)
            for event in tally.pending_events:
                self.add_event(event)
            return tally.id

    handler = OpenTwice(NullUnitOfWork, store, NoProjections(), outbox=outbox.append)
    assert (await handler.handle(OpenTally(tally_id="t-9"))).is_success()
    assert [c.commit_id for c in outbox] == [commit_id_for("t-9", 1)]
    assert [e.version for e in outbox[0].events] == [1, 2]
    assert [c.commit_id for c in await store.list_unpublished()] == [outbox[0].commit_id]


@pytest.mark.integration
async def test_on_the_real_servers_a_command_reaches_its_topic(
    app_factory: Any, consume_topic: Any
) -> None:
    async with app_factory(apps=[TALLY_APP], scopes=(TALLIES.scope,)) as running:
        created = await running.client.post(
            "/api/tallies", json={"tally_id": "r-1"}, headers=running.headers()
        )
        assert created.status_code == 201, created.text
        key = running.headers(**{"Idempotency-Key": "bump-1"})
        bumped = await running.client.post(
            "/api/tallies/r-1/increment", json={"by": 2}, headers=key
        )
        assert bumped.json() == {"id": "r-1", "version": 2}
        again = await running.client.post("/api/tallies/r-1/increment", json={"by": 2}, headers=key)
        assert again.json() == bumped.json()
        assert again.headers["idempotent-replayed"] == "true"
        [_, event] = await running.store.get_events("r-1")
        assert event.causation_id == "bump-1"
        records = await consume_topic(running.topic, 2)
        assert running.topic.endswith("tandem.tally.events")
        assert [r.key for r in records] == [b"r-1", b"r-1"]
        assert [dict(r.headers)["ce_type"] for r in records] == [
            b"TallyOpened",
            b"TallyIncremented",
        ]
        stored = running.service.mongo[running.settings.mongo_write_db]["tallies_events"]
        assert await stored.count_documents({"aggregate_id": "r-1"}) == 2
