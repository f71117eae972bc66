"""The specification of the orders read side: a pure fold of the event store.

Plain Python over :mod:`tandem_orders.events`, written without the app's own projections
(:mod:`tandem_orders.projections`), so a bug there cannot hide itself here. Differences are
classified as in :mod:`tandem_e2e.fold`: behind the store is *lost*, ahead of it (or a
customer counted twice) is *double-applied*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tandem.events import DomainEvent
from tandem_orders.events import (
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)

from tandem_e2e.fold import Comparison, StoreIssues, check_streams, money


@dataclass
class ExpectedOrder:
    id: str
    customer_id: str
    currency: str
    lines: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    status: str = "open"
    version: int = 0

    @property
    def total(self) -> Decimal:
        return sum((price * qty for qty, price in self.lines.values()), Decimal("0.00"))

    def fields(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "currency": self.currency,
            "lines": sorted((p, q, money(u)) for p, (q, u) in self.lines.items()),
            "total": money(self.total),
            "status": self.status,
            "version": self.version,
        }


def apply(orders: dict[str, ExpectedOrder], event: DomainEvent) -> None:
    oid = event.aggregate_id
    if isinstance(event, OrderPlaced):
        orders[oid] = ExpectedOrder(oid, event.customer_id, event.currency)
        for ln in event.lines:
            orders[oid].lines[ln.product_id] = (ln.quantity, ln.unit_price)
    else:
        order = orders[oid]
        if isinstance(event, OrderLineAdded):
            order.lines[event.line.product_id] = (event.line.quantity, event.line.unit_price)
        elif isinstance(event, OrderLineRemoved):
            del order.lines[event.product_id]
        elif isinstance(event, OrderSubmitted):
            order.status = "submitted"
        elif isinstance(event, OrderShipped):
            order.status = "shipped"
        elif isinstance(event, OrderCancelled):
            order.status = "cancelled"
    orders[oid].version = event.version


def fold_orders(events: Iterable[DomainEvent]) -> tuple[dict[str, ExpectedOrder], StoreIssues]:
    orders: dict[str, ExpectedOrder] = {}
    issues = check_streams(events, OrderPlaced, lambda e: apply(orders, e), orders)
    return orders, issues


def fold_customer_totals(orders: Mapping[str, ExpectedOrder]) -> dict[str, tuple[int, Decimal]]:
    """Per customer: the orders submitted (and not cancelled) and their total."""
    totals: dict[str, tuple[int, Decimal]] = {}
    for order in orders.values():
        if order.status in ("submitted", "shipped"):
            count, amount = totals.get(order.customer_id, (0, Decimal("0.00")))
            totals[order.customer_id] = (count + 1, money(amount + order.total))
    return totals


def compare_orders(
    expected: Mapping[str, ExpectedOrder],
    actual_orders: Iterable[Mapping[str, Any]],
    actual_totals: Iterable[Mapping[str, Any]],
    store: StoreIssues | None = None,
) -> Comparison:
    """``actual_totals`` are the API's rows: ``{customer_id, submitted_orders, total}``."""
    result = Comparison(products_expected=len(expected), store=store or StoreIssues())
    seen: set[str] = set()
    for doc in actual_orders:
        oid = str(doc.get("id") or doc["_id"])
        seen.add(oid)
        want = expected.get(oid)
        if want is None:
            result.double_applied.append(f"order {oid} is in the read model, not in the store")
            continue
        version = int(doc.get("version", 0))
        if version != want.version:
            bucket = result.lost if version < want.version else result.double_applied
            bucket.append(f"order {oid} at v{version}, store at v{want.version}")
            continue
        got = {
            "customer_id": doc.get("customer_id"),
            "currency": doc.get("currency"),
            "lines": sorted(
                (ln["product_id"], int(ln["quantity"]), money(ln["unit_price"]))
                for ln in doc.get("lines", [])
            ),
            "total": money(doc.get("total", "0")),
            "status": doc.get("status"),
            "version": version,
        }
        diff = {k: (got[k], v) for k, v in want.fields().items() if got[k] != v}
        if diff:
            result.mismatched.append(f"order {oid}: (read model, fold) {diff}")
    for oid in expected.keys() - seen:
        result.lost.append(f"order {oid} v{expected[oid].version} missing from the read model")
    want_totals = fold_customer_totals(expected)
    got_totals = {
        str(row["customer_id"]): (int(row["submitted_orders"]), money(row["total"]))
        for row in actual_totals
        if int(row.get("submitted_orders", 0)) or money(row.get("total", 0))
    }
    zero = (0, Decimal("0.00"))
    for customer in want_totals.keys() | got_totals.keys():
        want_row, got_row = want_totals.get(customer, zero), got_totals.get(customer, zero)
        if want_row == got_row:
            continue
        line = f"customer {customer}: read model {got_row}, fold {want_row}"
        if got_row[0] > want_row[0]:
            result.double_applied.append(line)
        elif got_row[0] < want_row[0]:
            result.lost.append(line)
        else:
            result.mismatched.append(line)
    return result
