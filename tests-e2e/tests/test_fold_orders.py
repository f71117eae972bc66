"""The orders oracle against the app's own fold: two independent implementations of one
specification must agree on random histories, and the oracle must see what goes wrong."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from tandem.events import DomainEvent
from tandem_e2e.fold_orders import compare_orders, fold_orders
from tandem_orders.events import (
    Line,
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)
from tandem_orders.projections import customer_view, fold

pytestmark = pytest.mark.unit


def history(seed: int, orders: int = 30) -> list[DomainEvent]:
    rng = random.Random(seed)
    events: list[DomainEvent] = []
    for n in range(orders):
        oid, meta = f"o-{n}", {"aggregate_type": "Order"}
        version = 1
        lines = {"p-0": Decimal("1.25")}
        stream: list[DomainEvent] = [
            OrderPlaced(
                aggregate_id=oid,
                version=1,
                customer_id=f"c-{n % 4}",
                currency="EUR",
                lines=(Line(product_id="p-0", quantity=2, unit_price=Decimal("1.25")),),
                **meta,
            )
        ]
        for step in range(rng.randint(0, 4)):
            version += 1
            if rng.random() < 0.6 or not lines:
                pid, price = f"p-{step + 1}", Decimal(rng.randint(1, 999)) / 100
                lines[pid] = price
                ln = Line(product_id=pid, quantity=rng.randint(1, 3), unit_price=price)
                stream.append(OrderLineAdded(aggregate_id=oid, version=version, line=ln, **meta))
            else:
                pid = rng.choice(sorted(lines))
                del lines[pid]
                stream.append(
                    OrderLineRemoved(aggregate_id=oid, version=version, product_id=pid, **meta)
                )
        if lines and rng.random() < 0.7:
            version += 1
            stream.append(
                OrderSubmitted(aggregate_id=oid, version=version, total=Decimal(0), **meta)
            )
            tail = rng.choice([None, OrderShipped, OrderCancelled])
            if tail is not None:
                version += 1
                stream.append(tail(aggregate_id=oid, version=version, **meta))
        events.extend(stream)
    return events


def app_read_models(
    events: list[DomainEvent],
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The app's own fold and totals, as the runtime would store and present them."""
    docs: dict[str, dict[str, object]] = {}
    for event in events:
        docs[event.aggregate_id], _ = fold(docs.get(event.aggregate_id), event)
    totals: dict[str, dict[str, int]] = {}
    for doc in docs.values():
        if doc["status"] in ("submitted", "shipped"):
            row = totals.setdefault(
                str(doc["customer_id"]), {"submitted_orders": 0, "total_cents": 0}
            )
            row["submitted_orders"] += 1
            row["total_cents"] += int(Decimal(str(doc["total"])) * 100)
    return list(docs.values()), [customer_view(c, t) for c, t in totals.items()]


@pytest.mark.parametrize("seed", range(5))
def test_oracle_and_app_fold_agree(seed: int) -> None:
    events = history(seed)
    expected, issues = fold_orders(events)
    orders, totals = app_read_models(events)
    result = compare_orders(expected, orders, totals, issues)
    assert result.ok, result.summary()
    assert len(expected) == 30


def test_oracle_sees_lost_double_applied_and_mismatched() -> None:
    events = history(7)
    expected, issues = fold_orders(events)
    orders, totals = app_read_models(events)
    behind = (
        dict(orders[0], version=int(orders[0]["version"]) - 1)
        if int(orders[0]["version"]) > 1
        else None
    )
    wrong_total = dict(orders[1], total="999.99")
    broken = [wrong_total, *orders[2:]] + ([behind] if behind else [])
    result = compare_orders(expected, broken, totals, issues)
    assert any("order o-1" in m for m in result.mismatched)
    assert result.lost
    doubled = [dict(row, submitted_orders=int(row["submitted_orders"]) + 1) for row in totals[:1]]
    result = compare_orders(expected, orders, doubled + totals[1:], issues)
    assert result.double_applied
    assert not result.lost
