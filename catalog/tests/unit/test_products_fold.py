"""The pure fold and the stats contribution."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)
from tandem_catalog.products import (
    Contribution,
    FoldError,
    category_totals,
    contribution,
    fold,
    fold_all,
)

pytestmark = pytest.mark.unit


def _created(pid: str = "p1", price: str = "19.99") -> ProductCreated:
    return ProductCreated(
        aggregate_id=pid, name="n", description="d", price=Decimal(price), category="books"
    )


def test_fold_builds_the_document_and_reports_changed_fields() -> None:
    doc, changed = fold(None, _created())
    assert doc["price"] == 19.99
    assert doc["status"] == "active"
    assert doc["version"] == 1
    assert changed["category"] == "books"
    update = ProductDetailsUpdated(aggregate_id="p1", version=2, name="new")
    doc, changed = fold(doc, update)
    assert changed == {"name": "new"}
    assert doc["category"] == "books"
    assert doc["version"] == 2
    doc, changed = fold(
        doc,
        ProductPriceChanged(
            aggregate_id="p1", version=3, old_price=Decimal("19.99"), price=Decimal("5.005")
        ),
    )
    assert changed == {"price": 5.0}
    doc, _ = fold(doc, ProductDiscontinued(aggregate_id="p1", version=4))
    assert doc["status"] == "discontinued"
    assert contribution(doc) is None


def test_fold_refuses_events_before_creation() -> None:
    with pytest.raises(FoldError):
        fold(None, ProductDiscontinued(aggregate_id="p1", version=2))
    doc, _ = fold(None, _created())
    with pytest.raises(FoldError):
        fold(doc, _created())


def test_category_totals_count_active_products_in_cents() -> None:
    docs = fold_all([_created("a", "1.10"), _created("b", "2.20"), _created("c", "3.00")])
    docs["c"]["status"] = "discontinued"
    assert category_totals(docs) == {"books": (2, 330)}
    assert contribution(docs["a"]) == Contribution("books", 110)
