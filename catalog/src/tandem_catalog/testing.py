"""Catalog documents and notices in the projector's shape, for tests of any service (pure)."""

from __future__ import annotations

from typing import Any

from tandem.runtime.contract import ChangeNotice

from tandem_catalog.app import app

Document = dict[str, Any]
PRODUCTS = app.read_model("products")
CATEGORY_STATS = app.read_model("category_stats")


def product_doc(product_id: str, version: int = 1, **fields: Any) -> Document:
    document: Document = {
        "_id": product_id,
        "id": product_id,
        "name": f"Product {product_id}",
        "description": "",
        "price": 10.0,
        "category": "general",
        "status": "active",
        "version": version,
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-01T00:00:00+00:00",
    }
    document.update(fields)
    return document


def notice(
    product_id: str, version: int, event_type: str = "ProductPriceChanged", **changed: Any
) -> bytes:
    """A ``products`` change notice as the projector publishes it (JSON bytes)."""
    return (
        ChangeNotice(
            read_model=PRODUCTS.name,
            id=product_id,
            version=version,
            event_type=event_type,
            changed_fields=changed,
        )
        .model_dump_json()
        .encode()
    )
