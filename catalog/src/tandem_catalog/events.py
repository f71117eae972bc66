"""Product events: the facts the command-service records and the read side projects.

Prices travel as decimal strings (``"19.99"``) so no binary float ever rounds money on the way.
``ProductCreated`` is at schema version 2: version 1 had no ``category``; its upcaster below
shows how old stored events keep being readable after a schema change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from tandem.events import DomainEvent, default_registry

AGGREGATE_TYPE = "Product"
DEFAULT_CATEGORY = "uncategorized"


class ProductEvent(DomainEvent):
    """Base of the product events; never stored itself."""

    aggregate_type: str = AGGREGATE_TYPE


class ProductCreated(ProductEvent):
    schema_version: ClassVar[int] = 2

    name: str
    description: str
    price: Decimal
    category: str


class ProductDetailsUpdated(ProductEvent):
    """Only the fields that changed are set; ``None`` means unchanged."""

    name: str | None = None
    description: str | None = None
    category: str | None = None


class ProductPriceChanged(ProductEvent):
    old_price: Decimal
    price: Decimal


class ProductDiscontinued(ProductEvent):
    reason: str | None = None


PRODUCT_EVENT_TYPES: tuple[str, ...] = (
    ProductCreated.event_type,
    ProductDetailsUpdated.event_type,
    ProductPriceChanged.event_type,
    ProductDiscontinued.event_type,
)


# Registered in the app's registry by the declaration (``App(upcasters=...)``), and in the
# library's default registry for in-process users of these events.
@default_registry.upcaster(ProductCreated.event_type, from_version=1)
def product_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 products had no category; they are filed under the default one.
    return {**data, "category": data.get("category") or DEFAULT_CATEGORY}


__all__ = [
    "AGGREGATE_TYPE",
    "DEFAULT_CATEGORY",
    "PRODUCT_EVENT_TYPES",
    "ProductCreated",
    "ProductDetailsUpdated",
    "ProductDiscontinued",
    "ProductEvent",
    "ProductPriceChanged",
]
