"""An app declared in this module runs on the three real service processes and real servers:
command over HTTP -> Kafka -> projector -> read model -> ``GET ?min_version`` -> WebSocket
frame, then ``projector rebuild`` of its read model. Nothing of the runtime knows it.

The processes import this module by name (``test_runtime_app:app``), as they import any app.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pydantic import BaseModel
from tandem.aggregate import AggregateRoot, applies
from tandem.app import (
    AggregateSpec,
    App,
    CommandAccepted,
    CommandRoute,
    Document,
    FoldProjection,
    ReadModelSpec,
)
from tandem.auth import issue_token
from tandem.errors import DomainError
from tandem.events import DomainEvent
from tandem.messages import Command
from tandem.settings import TandemSettings
from tandem.testing.infra import InfraEndpoints
from tandem.testing.system import running_system

pytestmark = pytest.mark.integration


class MeterOpened(DomainEvent):
    aggregate_type: str = "Meter"


class MeterAdvanced(DomainEvent):
    aggregate_type: str = "Meter"
    by: int


class Meter(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.reading = 0

    @classmethod
    def open(cls, meter_id: str) -> Meter:
        meter = cls(meter_id)
        meter._record(MeterOpened)
        return meter

    def advance(self, by: int) -> None:
        if by < 1:
            raise DomainError("invalid_step", "a meter only advances", details={"field": "by"})
        self._record(MeterAdvanced, by=by)

    @applies(MeterOpened)
    def _opened(self, event: MeterOpened) -> None:
        self.reading = 0

    @applies(MeterAdvanced)
    def _advanced(self, event: MeterAdvanced) -> None:
        self.reading += event.by


class OpenMeter(Command[CommandAccepted]):
    meter_id: str


class AdvanceMeter(Command[CommandAccepted]):
    meter_id: str
    by: int
    expected_version: int | None = None


def fold_meter(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    reading = (doc or {}).get("reading", 0)
    changed: dict[str, object] = {
        "reading": reading + event.by if isinstance(event, MeterAdvanced) else 0
    }
    return {**(doc or {"id": event.aggregate_id}), **changed, "version": event.version}, changed


class MeterView(BaseModel):
    id: str
    reading: int
    version: int


app = App(
    name="meters",
    aggregates=[
        AggregateSpec(
            Meter,
            events=[MeterOpened, MeterAdvanced],
            route="/api/meters",
            id_field="meter_id",
            commands=[
                CommandRoute(OpenMeter, "POST", create=lambda c: Meter.open(c.meter_id)),
                CommandRoute(
                    AdvanceMeter, "POST", "/{id}/advance", decide=lambda m, c: m.advance(c.by)
                ),
            ],
        )
    ],
    read_models=[
        ReadModelSpec(
            "meters",
            FoldProjection(fold_meter, [MeterOpened, MeterAdvanced]),
            route="/api/meters",
            document=MeterView,
            live=True,
        ),
        # Not live (no WebSocket), still cached and announced for min_version readers.
        ReadModelSpec(
            "meter_history",
            FoldProjection(fold_meter, [MeterOpened, MeterAdvanced]),
            route="/api/meter-history",
            read_scope="meters:read",
        ),
    ],
)


async def test_a_test_declared_app_runs_on_the_three_services(
    infra: InfraEndpoints, unique_name: str, redis_client: Any
) -> None:
    token = issue_token(TandemSettings(), "tester", ["meters:write", "meters:read"], 300)
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        running_system(
            infra.as_env(),
            apps=["test_runtime_app:app"],
            name=unique_name,
            pythonpath=[Path(__file__).parent],
        ) as system,
        httpx.AsyncClient(headers=auth, timeout=30) as http,
    ):
        opened = await http.post(f"{system.commands}/api/meters", json={"meter_id": "m-1"})
        assert (opened.status_code, opened.json()) == (201, {"id": "m-1", "version": 1})
        advanced = await http.post(f"{system.commands}/api/meters/m-1/advance", json={"by": 3})
        assert advanced.json() == {"id": "m-1", "version": 2}
        refused = await http.post(f"{system.commands}/api/meters/m-1/advance", json={"by": 0})
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid_step")

        read = await http.get(
            f"{system.queries}/api/meters/m-1", params={"min_version": 2, "wait_ms": 20_000}
        )
        assert read.status_code == 200
        assert {k: read.json()[k] for k in ("id", "reading", "version")} == {
            "id": "m-1",
            "reading": 3,
            "version": 2,
        }
        assert read.headers["etag"] == '"2"'

        history = app.read_model("meter_history")
        notices = redis_client.pubsub()
        await notices.subscribe(history.channel)
        async with websockets.connect(f"{system.ws}/ws/meters?ids=m-1") as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            subscribed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert subscribed["type"] == "subscribed"
            await http.post(f"{system.commands}/api/meters/m-1/advance", json={"by": 4})
            frame = await _next_change(ws)
        assert (frame["read_model"], frame["id"], frame["version"]) == ("meters", "m-1", 3)
        assert frame["changed_fields"] == {"reading": 7}
        # The read model without a WebSocket is announced too (its readers' caches and waiters
        # follow the notices), under its own name.
        announced = await _next_notice(notices)
        await notices.aclose()
        assert (announced["read_model"], announced["version"]) == ("meter_history", 3)
        past = await http.get(
            f"{system.queries}/api/meter-history/m-1", params={"min_version": 3, "wait_ms": 20_000}
        )
        assert (past.status_code, past.json()["reading"]) == (200, 7)

        code, output = await system.projector_cli("rebuild")
        assert code == 0
        assert "meters" in output  # the declared read models are listed
        code, output = await system.projector_cli("rebuild", "meters")
        assert code == 0, output
        rebuilt = await http.get(f"{system.queries}/api/meters/m-1")
        assert (rebuilt.json()["reading"], rebuilt.json()["version"]) == (7, 3)


async def _next_change(ws: Any) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame["type"] == "change":
            return frame


async def _next_notice(pubsub: Any) -> dict[str, Any]:
    for _ in range(200):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            notice: dict[str, Any] = json.loads(message["data"])
            if notice["version"] == 3:
                return notice
    raise AssertionError("no change notice on the meter_history channel")
