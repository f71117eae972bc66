"""The catalog, declared for the runtime: what each service loads with
``TANDEM_APPS=tandem_catalog.app:app``.

Everything here is the catalog's own (the aggregate, its commands and routes, the two read
models and their search); everything else (topics, collections, channels, caches, HTTP and
WebSocket plumbing, retries, rebuilds) is the runtime's, derived from this value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tandem.app import (
    AggregateSpec,
    App,
    CommandRoute,
    Document,
    FoldProjection,
    Index,
    ReadModelSpec,
    Search,
    TotalsProjection,
)

from tandem_catalog.commands import (
    ChangeProductPrice,
    CreateProduct,
    DiscontinueProduct,
    UpdateProductDetails,
)
from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
    product_created_v1_to_v2,
)
from tandem_catalog.product import Product
from tandem_catalog.products import contribution, fold
from tandem_catalog.queries import CategoryStat, SearchProducts
from tandem_catalog.queries import Product as ProductView

EVENTS = (ProductCreated, ProductDetailsUpdated, ProductPriceChanged, ProductDiscontinued)


def _category_share(doc: Document | None) -> tuple[str, Mapping[str, int]] | None:
    share = contribution(doc)
    if share is None:
        return None
    return share.category, {"active_count": 1, "price_sum_cents": share.price_cents}


def _category_stat(category: str, totals: Mapping[str, int]) -> Document:
    count, cents = int(totals.get("active_count", 0)), int(totals.get("price_sum_cents", 0))
    return {
        "category": category,
        "active_count": count,
        "price_sum": round(cents / 100, 2),
        "average_price": round(cents / 100 / count, 2) if count else None,
    }


app = App(
    name="catalog",
    title="Product catalog",
    aggregates=[
        AggregateSpec(
            Product,
            events=EVENTS,
            route="/api/products",
            id_field="product_id",
            write_scope="products:write",
            commands=[
                CommandRoute(
                    CreateProduct,
                    "POST",
                    create=lambda c: Product.create(
                        c.product_id,
                        name=c.name,
                        description=c.description,
                        price=c.price,
                        category=c.category,
                    ),
                    summary="Create a product; `product_id` may be given, else the server makes one",
                ),
                CommandRoute(
                    UpdateProductDetails,
                    "PATCH",
                    "/{id}",
                    decide=lambda p, c: p.update_details(
                        name=c.name, description=c.description, category=c.category
                    ),
                    summary="Change name, description or category",
                ),
                CommandRoute(
                    ChangeProductPrice,
                    "POST",
                    "/{id}/price",
                    decide=lambda p, c: p.change_price(c.price),
                    summary="Change the price",
                ),
                CommandRoute(
                    DiscontinueProduct,
                    "POST",
                    "/{id}/discontinue",
                    decide=lambda p, c: p.discontinue(c.reason),
                    summary="Discontinue the product",
                ),
            ],
        )
    ],
    read_models=[
        ReadModelSpec(
            "products",
            FoldProjection(fold, EVENTS),
            route="/api/products",
            document=ProductView,
            read_scope="products:read",
            live=True,
            indexes=[
                Index([("category", 1), ("price", 1)]),
                Index([("status", 1)]),
                Index([("price", 1)]),
                Index([("name", 1)]),
                Index([("updated_at", -1)]),
                Index([("created_at", -1)]),
            ],
            search=Search(SearchProducts, text_fields=("name", "description")),
        ),
        ReadModelSpec(
            "category_stats",
            TotalsProjection("products", _category_share, _category_stat),
            route="/api/categories/stats",
            document=CategoryStat,
            read_scope="products:read",
        ),
    ],
    upcasters=[(ProductCreated.event_type, 1, product_created_v1_to_v2)],
    static_dir=Path(__file__).parent / "static",
)
