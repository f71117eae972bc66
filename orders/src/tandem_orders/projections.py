"""Where an order event becomes an ``orders`` document, and what an order adds to its
customer's totals: pure functions, no I/O (the runtime stores, caches and announces)."""

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

STATUS = {OrderSubmitted: "submitted", OrderShipped: "shipped", OrderCancelled: "cancelled"}


def _line(ln: Line) -> Document:
    return {"product_id": ln.product_id, "quantity": ln.quantity, "unit_price": str(ln.unit_price)}


def _lines(lines: list[Document]) -> dict[str, object]:
    total = sum((Decimal(ln["unit_price"]) * ln["quantity"] for ln in lines), Decimal("0.00"))
    return {"lines": lines, "total": str(total), "line_count": len(lines)}


def fold(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    """``(document, event) -> (new document, the fields it changed)``."""
    if (doc is None) != isinstance(event, OrderPlaced):
        raise FoldError(f"{event.aggregate_id}: {event.event_type} out of place")
    changed: dict[str, object]
    if isinstance(event, OrderPlaced):
        changed = {
            "id": event.aggregate_id,
            "customer_id": event.customer_id,
            "status": "open",
            "currency": event.currency,
            "placed_at": event.occurred_at.isoformat(),
            **_lines([_line(ln) for ln in event.lines]),
        }
    elif isinstance(event, OrderLineAdded):
        changed = _lines([*(doc or {})["lines"], _line(event.line)])
    elif isinstance(event, OrderLineRemoved):
        changed = _lines(
            [ln for ln in (doc or {})["lines"] if ln["product_id"] != event.product_id]
        )
    elif type(event) in STATUS:
        changed = {"status": STATUS[type(event)]}  # the total already follows the lines
    else:
        raise FoldError(f"orders has no rule for {event.event_type}")
    at = event.occurred_at.isoformat()
    return {**(doc or {}), **changed, "version": event.version, "updated_at": at}, changed


def customer_share(doc: Document | None) -> tuple[str, Mapping[str, int]] | None:
    """A submitted (or shipped) order adds one order and its total in cents to its customer."""
    if doc is None or doc["status"] not in ("submitted", "shipped"):
        return None
    return doc["customer_id"], {
        "submitted_orders": 1,
        "total_cents": int(Decimal(doc["total"]) * 100),
    }


def customer_view(customer_id: str, totals: Mapping[str, int]) -> Document:
    total = Decimal(totals.get("total_cents", 0)) / 100
    return {
        "customer_id": customer_id,
        "submitted_orders": totals.get("submitted_orders", 0),
        "total": str(total.quantize(Decimal("0.01"))),
    }
