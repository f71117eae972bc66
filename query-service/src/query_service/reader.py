"""Reads the projector's product read models from MongoDB (documents in the shape of
``docs/conventions.md``: flat fields, ``_id`` = product id).

The library's ``MongoReadModelRepository`` stores a model's fields under ``data``, which is
not the shape the projector and this service agreed on, so this module queries the flat
documents itself (``$regex``, ``$in``, ranges, ``count_documents``, sort/skip/limit).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from tandem.read_model.filters import escape_regex
from tandem.read_model.models import PaginatedResult
from tandem_catalog.contract import CATEGORY_STATS_READ_MODEL, PRODUCTS_READ_MODEL

from query_service.collections import ActiveCollections
from query_service.queries import SearchProducts

Document = dict[str, Any]
_HIDDEN = {"_id": 0}


def to_api(document: Document) -> Document:
    """The API shape of a product document (the same JSON the projector caches in Redis)."""
    product = {key: value for key, value in document.items() if key != "_id"}
    product.setdefault("id", document.get("_id"))
    for key in ("created_at", "updated_at"):
        value = product.get(key)
        if isinstance(value, datetime):
            product[key] = value.isoformat()
    return product


class ProductReader:
    def __init__(self, collections: ActiveCollections) -> None:
        self.collections = collections

    async def get(self, product_id: str) -> Document | None:
        products = await self.collections.collection(PRODUCTS_READ_MODEL)
        document = await products.find_one({"_id": product_id})
        return to_api(document) if document is not None else None

    async def get_many(self, product_ids: list[str]) -> dict[str, Document]:
        if not product_ids:
            return {}
        products = await self.collections.collection(PRODUCTS_READ_MODEL)
        cursor = products.find({"_id": {"$in": product_ids}})
        return {str(doc["_id"]): to_api(doc) async for doc in cursor}

    async def search(self, query: SearchProducts) -> PaginatedResult[Document]:
        products = await self.collections.collection(PRODUCTS_READ_MODEL)
        mongo_filter = search_filter(query)
        field, direction = sort_spec(query.sort)
        cursor = (
            products.find(mongo_filter)
            .sort([(field, direction), ("_id", ASCENDING)])  # _id: pages never overlap
            .skip((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        # The count and the page are independent reads: side by side, a search costs the
        # longer of the two, not their sum (each reads the filter's rows).
        total, items = await asyncio.gather(
            products.count_documents(mongo_filter), cursor.to_list()
        )
        page = [to_api(doc) for doc in items]
        return PaginatedResult[Document].create(page, total, query.page, query.page_size)

    async def category_stats(self) -> list[Document]:
        stats = await self.collections.collection(CATEGORY_STATS_READ_MODEL)
        rows: list[Document] = []
        async for doc in stats.find({}).sort("_id", ASCENDING):
            count = int(doc.get("active_count") or 0)
            price_sum = float(doc.get("price_sum") or 0.0)
            rows.append(
                {
                    "category": str(doc["_id"]),
                    "active_count": count,
                    "price_sum": round(price_sum, 2),
                    # Folded incrementally (a sum and a count), so the average is a division.
                    "average_price": round(price_sum / count, 2) if count else None,
                }
            )
        return rows


def search_filter(query: SearchProducts) -> Document:
    mongo_filter: Document = {}
    if query.category is not None:
        mongo_filter["category"] = query.category
    if query.status is not None:
        mongo_filter["status"] = query.status
    price: Document = {}
    if query.min_price is not None:
        price["$gte"] = query.min_price
    if query.max_price is not None:
        price["$lte"] = query.max_price
    if price:
        mongo_filter["price"] = price
    if query.q:
        # User text is a literal, never a pattern (see escape_regex).
        pattern = {"$regex": escape_regex(query.q), "$options": "i"}
        mongo_filter["$or"] = [{"name": pattern}, {"description": pattern}]
    return mongo_filter


def sort_spec(sort: str) -> tuple[str, int]:
    return (sort[1:], DESCENDING) if sort.startswith("-") else (sort, ASCENDING)
