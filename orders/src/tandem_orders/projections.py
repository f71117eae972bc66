"""Where an order event becomes an ``orders`` document, and what an order adds to its
customer's totals: pure functions, no I/O (the runtime does the storing)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tandem.app import Document, FoldError
from tandem.events import DomainEvent

from tandem_orders.events import (
    Line,
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)

COUNTED = ("submitted", "shipped")
"""An order counts in its customer's totals from submission until it is cancelled."""


def _line(ln: Line) -> Document:
    return {"product_id": ln.product_id, "quantity": ln.quantity, "unit_price": str(ln.unit_price)}


def _total(lines: list[Document]) -> str:
    return str(sum((Decimal(ln["unit_price"]) * ln["quantity"] for ln in lines), Decimal("0.00")))


def fold(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    at = event.occurred_at.isoformat()
    if isinstance(event, OrderPlaced):
        if doc is not None:
            raise FoldError(f"{event.aggregate_id}: OrderPlaced on an existing order")
        lines = [_line(ln) for ln in event.lines]
        changed: dict[str, object] = {
            "id": event.aggregate_id,
            "customer_id": event.customer_id,
            "currency": event.currency,
            "lines": lines,
            "total": _total(lines),
            "status": "open",
            "placed_at": at,
        }
        new: Document = dict(changed)
    else:
        if doc is None:
            raise FoldError(f"{event.aggregate_id}: {event.event_type} before OrderPlaced")
        new = dict(doc)
        if isinstance(event, OrderLineAdded):
            lines = [*doc["lines"], _line(event.line)]
            changed = {"lines": lines, "total": _total(lines)}
        elif isinstance(event, OrderLineRemoved):
            lines = [ln for ln in doc["lines"] if ln["product_id"] != event.product_id]
            changed = {"lines": lines, "total": _total(lines)}
        elif isinstance(event, OrderSubmitted):
            changed = {"status": "submitted"}  # the total already follows the lines
        elif isinstance(event, OrderShipped):
            changed = {"status": "shipped"}
        elif isinstance(event, OrderCancelled):
            changed = {"status": "cancelled"}
        else:
            raise FoldError(f"orders has no rule for {event.event_type}")
        new.update(changed)
    new["line_count"] = len(new["lines"])
    new["version"] = event.version
    new["updated_at"] = at
    new.pop("_id", None)
    return new, changed


def customer_share(doc: Document | None) -> tuple[str, Mapping[str, int]] | None:
    """A submitted (or shipped) order adds one order and its total, in cents."""
    if doc is None or doc.get("status") not in COUNTED:
        return None
    cents = int(Decimal(doc["total"]) * 100)
    return str(doc["customer_id"]), {"submitted_orders": 1, "total_cents": cents}


def customer_view(customer_id: str, totals: Mapping[str, int]) -> Document:
    cents = int(totals.get("total_cents", 0))
    return {
        "customer_id": customer_id,
        "submitted_orders": int(totals.get("submitted_orders", 0)),
        "total": str((Decimal(cents) / 100).quantize(Decimal("0.01"))),
    }
