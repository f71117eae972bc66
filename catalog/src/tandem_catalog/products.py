"""Where a product event becomes a ``products`` document: a pure fold, no I/O.

The live projector, the gap healer and the rebuild all call :func:`fold`, so a rebuilt
collection equals the live one by construction. Documents hold JSON-ready values only (prices
as numbers with two decimals, times as ISO 8601 strings), which is also the cache's API shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tandem.events import DomainEvent

from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)

Document = dict[str, Any]
PRODUCT_FIELDS = (
    "id",
    "name",
    "description",
    "price",
    "category",
    "status",
    "version",
    "created_at",
    "updated_at",
)
_CENT = Decimal("0.01")


class FoldError(Exception):
    """The event cannot apply to the current document (e.g. an update before the creation).

    Deterministic for the same inputs, so the projector retries it (the event store may still
    heal it) and then dead-letters it; it is never ignored.
    """


def price_number(price: Decimal) -> float:
    return float(price.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def price_cents(price: float) -> int:
    return round(price * 100)


def fold(doc: Document | None, event: DomainEvent) -> tuple[Document, dict[str, object]]:
    """Apply ``event`` (which must be ``doc.version + 1``) and return the new document and the
    fields it changed (what the change notice carries)."""
    at = event.occurred_at.isoformat()
    if isinstance(event, ProductCreated):
        if doc is not None:
            raise FoldError(f"{event.aggregate_id}: ProductCreated on an existing product")
        changed: dict[str, object] = {
            "id": event.aggregate_id,
            "name": event.name,
            "description": event.description,
            "price": price_number(event.price),
            "category": event.category,
            "status": "active",
            "created_at": at,
        }
        new: Document = {**changed}
    else:
        if doc is None:
            raise FoldError(
                f"{event.aggregate_id}: {event.event_type} v{event.version} before ProductCreated"
            )
        new = dict(doc)
        if isinstance(event, ProductDetailsUpdated):
            changed = {
                key: value
                for key in ("name", "description", "category")
                if (value := getattr(event, key)) is not None
            }
        elif isinstance(event, ProductPriceChanged):
            changed = {"price": price_number(event.price)}
        elif isinstance(event, ProductDiscontinued):
            changed = {"status": "discontinued"}
        else:
            raise FoldError(f"products has no rule for {event.event_type}")
        new.update(changed)
    new["version"] = event.version
    new["updated_at"] = at
    new.pop("_id", None)
    return new, changed


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one product adds to ``category_stats``: nothing unless it is active."""

    category: str
    price_cents: int


def contribution(doc: Document | None) -> Contribution | None:
    if doc is None or doc.get("status") != "active":
        return None
    return Contribution(str(doc["category"]), price_cents(float(doc["price"])))


def fold_all(events: list[DomainEvent]) -> dict[str, Document]:
    """The reference fold of whole streams (tests and tools compare read models with it)."""
    docs: dict[str, Document] = {}
    for event in sorted(events, key=lambda e: (e.aggregate_id, e.version)):
        docs[event.aggregate_id], _ = fold(docs.get(event.aggregate_id), event)
    return docs


def category_totals(docs: dict[str, Document]) -> dict[str, tuple[int, int]]:
    """``{category: (active_count, price_sum_cents)}`` of a set of product documents."""
    totals: dict[str, tuple[int, int]] = {}
    for doc in docs.values():
        share = contribution(doc)
        if share is not None:
            count, cents = totals.get(share.category, (0, 0))
            totals[share.category] = (count + 1, cents + share.price_cents)
    return totals
