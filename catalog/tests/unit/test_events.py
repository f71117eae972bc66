from __future__ import annotations

from decimal import Decimal

import pytest
from tandem_catalog.app import app as catalog
from tandem_catalog.events import (
    DEFAULT_CATEGORY,
    ProductCreated,
    ProductPriceChanged,
)

pytestmark = pytest.mark.unit


def test_round_trip_keeps_decimal_price() -> None:
    event = ProductCreated(
        aggregate_id="p1", name="Lamp", description="d", price=Decimal("19.99"), category="home"
    )
    data = event.to_dict()
    assert data["price"] == "19.99"
    assert data["event_type"] == "ProductCreated"
    assert data["schema_version"] == 2
    assert catalog.registry.deserialize(data) == event


def test_v1_product_created_is_upcast_with_default_category() -> None:
    stored_v1 = {
        "event_type": "ProductCreated",
        "schema_version": 1,
        "aggregate_id": "p1",
        "aggregate_type": "Product",
        "version": 1,
        "name": "Old lamp",
        "description": "from before categories",
        "price": "5.00",
    }
    event = catalog.registry.deserialize(stored_v1)
    assert isinstance(event, ProductCreated)
    assert event.category == DEFAULT_CATEGORY
    assert event.price == Decimal("5.00")


def test_price_change_event_type_name() -> None:
    e = ProductPriceChanged(aggregate_id="p", version=2, old_price=Decimal(1), price=Decimal(2))
    assert e.aggregate_type == "Product"
    assert e.event_type == "ProductPriceChanged"
