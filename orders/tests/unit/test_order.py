"""The Order aggregate's rules as given/when/then scenarios, and the two projections' folds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tandem.app import FoldError
from tandem.errors import DomainError
from tandem.testing.aggregate import AggregateScenario
from tandem_orders.events import (
    Line,
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)
from tandem_orders.order import Order
from tandem_orders.projections import customer_share, customer_view, fold

pytestmark = pytest.mark.unit

OID = "o-1"


def ev(cls: type, **data: object) -> object:
    return cls(aggregate_id=OID, aggregate_type="Order", **data)


def placed(*lines: Line) -> OrderPlaced:
    lines = lines or (Line(product_id="p-1", quantity=2, unit_price=Decimal("9.50")),)
    return OrderPlaced(
        aggregate_id=OID,
        aggregate_type="Order",
        customer_id="c-1",
        currency="EUR",
        lines=tuple(lines),
    )


def scenario() -> AggregateScenario[Order]:
    return AggregateScenario(Order, OID)


def test_place_records_lines_with_two_decimal_prices() -> None:
    scenario().when(
        lambda _: Order.place(
            OID,
            "c-1",
            "EUR",
            [Line(product_id="p-1", quantity=2, unit_price=Decimal("9.5"))],
        )
    ).then(placed())


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([], "empty_order"),
        ([Line(product_id="p", quantity=0, unit_price=Decimal("1"))], "invalid_quantity"),
        (
            [Line(product_id="p", quantity=1, unit_price=Decimal("1.001"))],
            "invalid_price_precision",
        ),
        ([Line(product_id="p", quantity=1, unit_price=Decimal("0"))], "invalid_price"),
        (
            [
                Line(product_id="p", quantity=1, unit_price=Decimal("1")),
                Line(product_id="p", quantity=2, unit_price=Decimal("1")),
            ],
            "duplicate_line",
        ),
    ],
)
def test_place_refuses_bad_lines(lines: list[Line], code: str) -> None:
    with pytest.raises(DomainError) as info:
        Order.place(OID, "c", "EUR", lines)
    assert info.value.code == code
    assert info.value.status_code == 422


def test_add_and_remove_lines_while_open() -> None:
    line = Line(product_id="p-2", quantity=1, unit_price=Decimal("3.00"))
    scenario().given(placed()).when(
        lambda o: o.add_line(Line(product_id="p-2", quantity=1, unit_price=Decimal("3")))
    ).then(ev(OrderLineAdded, line=line))
    scenario().given(placed()).when(lambda o: o.remove_line("p-1")).then(
        ev(OrderLineRemoved, product_id="p-1")
    )


def test_line_rules_are_conflicts() -> None:
    scenario().given(placed()).when(
        lambda o: o.add_line(Line(product_id="p-1", quantity=1, unit_price=Decimal("1")))
    ).then_raises(DomainError, code="duplicate_line")
    scenario().given(placed()).when(lambda o: o.remove_line("nope")).then_raises(
        DomainError, code="line_not_found"
    )


def test_submit_records_the_total_and_closes_the_order() -> None:
    scenario().given(placed()).when(lambda o: o.submit()).then(
        ev(OrderSubmitted, total=Decimal("19.00"))
    )
    submitted = [placed(), ev(OrderSubmitted, total=Decimal("19.00"))]
    scenario().given(*submitted).when(
        lambda o: o.add_line(Line(product_id="p-9", quantity=1, unit_price=Decimal("1")))
    ).then_raises(DomainError, code="order_not_open")


def test_an_empty_order_cannot_be_submitted() -> None:
    scenario().given(placed(), ev(OrderLineRemoved, product_id="p-1")).when(
        lambda o: o.submit()
    ).then_raises(DomainError, code="empty_order")


def test_ship_only_submitted_and_cancel_not_after_shipping() -> None:
    scenario().given(placed()).when(lambda o: o.ship()).then_raises(
        DomainError, code="order_not_submitted"
    )
    submitted = [placed(), ev(OrderSubmitted, total=Decimal("19.00"))]
    scenario().given(*submitted).when(lambda o: o.ship()).then(ev(OrderShipped))
    scenario().given(*submitted).when(lambda o: o.cancel("late")).then(
        ev(OrderCancelled, reason="late")
    )
    scenario().given(*submitted, ev(OrderShipped)).when(lambda o: o.cancel()).then_raises(
        DomainError, code="order_shipped"
    )
    scenario().given(placed(), ev(OrderCancelled)).when(lambda o: o.cancel()).then_raises(
        DomainError, code="order_cancelled"
    )


def _stamped(events: list[object]) -> list[object]:
    return [e.model_copy(update={"version": i}) for i, e in enumerate(events, 1)]  # type: ignore[attr-defined]


def test_fold_builds_the_order_document_and_its_totals_share() -> None:
    events = _stamped(
        [
            placed(),
            ev(OrderLineAdded, line=Line(product_id="p-2", quantity=3, unit_price=Decimal("0.10"))),
            ev(OrderLineRemoved, product_id="p-1"),
            ev(OrderSubmitted, total=Decimal("0.30")),
        ]
    )
    doc = None
    shares = []
    for event in events:
        doc, _changed = fold(doc, event)  # type: ignore[arg-type]
        shares.append(customer_share(doc))
    assert doc is not None
    assert doc["lines"] == [{"product_id": "p-2", "quantity": 3, "unit_price": "0.10"}]
    assert (doc["status"], doc["total"], doc["line_count"], doc["version"]) == (
        "submitted",
        "0.30",
        1,
        4,
    )
    assert shares[:3] == [None, None, None]
    assert shares[3] == ("c-1", {"submitted_orders": 1, "total_cents": 30})
    assert customer_view("c-1", {"submitted_orders": 2, "total_cents": 1999}) == {
        "customer_id": "c-1",
        "submitted_orders": 2,
        "total": "19.99",
    }
    cancelled, _ = fold(doc, ev(OrderCancelled).model_copy(update={"version": 5}))  # type: ignore[attr-defined]
    assert customer_share(cancelled) is None


def test_fold_refuses_events_out_of_place() -> None:
    with pytest.raises(FoldError):
        fold(None, ev(OrderShipped))  # type: ignore[arg-type]
    doc, _ = fold(None, placed())
    with pytest.raises(FoldError):
        fold(doc, placed())
