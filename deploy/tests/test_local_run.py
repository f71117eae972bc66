"""`make run`'s launcher (deploy/local/run.py): the services it starts come from the apps of
``TANDEM_APPS``, one projector per app, so a user's own app is served like the catalog."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest
from deploy_support import ROOT
from tandem.aggregate import AggregateRoot, applies
from tandem.app import (
    AggregateCommand,
    AggregateSpec,
    App,
    CommandRoute,
    Document,
    FoldProjection,
    ReadModelSpec,
)
from tandem.events import DomainEvent

pytestmark = pytest.mark.deploy


class TicketOpened(DomainEvent):
    aggregate_type: str = "Ticket"


class Ticket(AggregateRoot):
    @classmethod
    def open(cls, ticket_id: str) -> Ticket:
        ticket = cls(ticket_id)
        ticket._record(TicketOpened)
        return ticket

    @applies(TicketOpened)
    def _opened(self, event: TicketOpened) -> None:
        pass


class OpenTicket(AggregateCommand):
    ticket_id: str


def _fold(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    changed: dict[str, object] = {"id": event.aggregate_id, "version": event.version}
    return {**(doc or {}), **changed}, changed


TICKETS = App(
    name="tickets",
    aggregates=[
        AggregateSpec(
            Ticket,
            events=[TicketOpened],
            route="/api/tickets",
            id_field="ticket_id",
            commands=[CommandRoute(OpenTicket, "POST", create=lambda c: Ticket.open(c.ticket_id))],
        )
    ],
    read_models=[
        ReadModelSpec("tickets", FoldProjection(_fold, [TicketOpened]), route="/api/tickets"),
    ],
)


def _launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tandem_local_run", ROOT / "deploy/local/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_by_default_the_catalog_and_orders_get_a_projector_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TANDEM_APPS", raising=False)
    run = _launcher()
    services: dict[str, Any] = run.services(run.load_apps(run.app_specs()))
    assert services == {
        "command-service": ("command_service", 8001, {}),
        "query-service": ("query_service", 8002, {}),
        "projector-catalog": (
            "projector",
            8003,
            {"TANDEM_READ_MODELS": "products,category_stats"},
        ),
        "projector-orders": ("projector", 8004, {"TANDEM_READ_MODELS": "orders,customer_totals"}),
    }


def test_a_users_app_gets_its_own_projector_and_an_app_without_read_models_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_APPS", '["tandem_orders.app:app"]')  # the JSON form, as settings
    run = _launcher()
    assert run.app_specs() == ["tandem_orders.app:app"]
    writes_only = App(name="audit", aggregates=TICKETS.aggregates)
    [orders] = run.load_apps(run.app_specs())
    services = run.services([orders, writes_only, TICKETS])
    assert [name for name in services if name.startswith("projector")] == [
        "projector-orders",
        "projector-tickets",
    ]
    assert services["projector-tickets"] == ("projector", 8004, {"TANDEM_READ_MODELS": "tickets"})


def test_an_app_that_cannot_be_loaded_stops_the_launcher_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TANDEM_APPS", "tandem_tickets_not_installed.app:app")
    run = _launcher()
    started: list[object] = []
    monkeypatch.setattr(run.stack, "start", started.append)
    assert run.main() == 2
    assert started == []
    assert "run: error: TANDEM_APPS: cannot load app" in capsys.readouterr().err
