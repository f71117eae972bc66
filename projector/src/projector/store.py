"""Read-model database access the projector needs beyond the library: the pointer document,
indexes, conditional multi-updates and first inserts with per-operation conflict reporting.

Writes are ordered ``bulk_write`` calls: the operations before a failing one applied, none
after it, so a batch recomputed after a :class:`WriteConflict` redoes only idempotent work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from tandem_catalog.contract import (
    CATEGORY_STATS_READ_MODEL,
    PRODUCTS_READ_MODEL,
    READ_MODEL_POINTERS,
)

Document = dict[str, Any]
MEMBERS = "category_stats_members"
DUPLICATE_KEY = 11000
MAX_OPS_PER_COMMAND = 500
"""Operations per ``bulk_write`` (the bench's bulk-upsert batch is the same size)."""


class WriteConflict(Exception):
    """A conditional write found another version than expected (a concurrent writer or a stale
    read). The batch is recomputed from fresh reads; every write in it is idempotent."""


async def conditional_update(
    db: AsyncDatabase[Document], collection: str, updates: Sequence[Document]
) -> None:
    """Run ``{"q", "u", "upsert"}`` updates in order; raise :class:`WriteConflict` on a
    duplicate-key error (the failed condition of an upsert)."""
    await _ordered(
        db, collection, [UpdateOne(u["q"], u["u"], upsert=bool(u.get("upsert"))) for u in updates]
    )


async def insert_new(
    db: AsyncDatabase[Document], collection: str, documents: Sequence[Document]
) -> None:
    """Insert documents that must not exist yet (an aggregate's first write), in order;
    raise :class:`WriteConflict` when one does (another writer created it first).

    Why not the upsert that :func:`conditional_update` sends: an insert does not have to find
    and match a document first; a replay is mostly first writes.
    """
    await _ordered(db, collection, [InsertOne(doc) for doc in documents])


async def _ordered(
    db: AsyncDatabase[Document], collection: str, ops: Sequence[InsertOne[Document] | UpdateOne]
) -> None:
    """One ordered ``bulk_write`` per chunk: what precedes a failed operation applied, nothing
    after it; a duplicate key is a :class:`WriteConflict`, any other error a bug."""
    for start in range(0, len(ops), MAX_OPS_PER_COMMAND):
        try:
            await db[collection].bulk_write(list(ops[start : start + MAX_OPS_PER_COMMAND]))
        except BulkWriteError as exc:
            first = (exc.details.get("writeErrors") or [{}])[0]
            if first.get("code") == DUPLICATE_KEY:
                raise WriteConflict(f"{collection}: {first.get('errmsg')}") from exc
            raise RuntimeError(f"{collection} write failed: {first}") from exc


async def ensure_product_indexes(db: AsyncDatabase[Document], collection: str) -> None:
    """The indexes the query side's filters and sorts need."""
    col = db[collection]
    await col.create_index([("category", ASCENDING), ("price", ASCENDING)], name="category_price")
    await col.create_index([("status", ASCENDING)], name="status")
    await col.create_index([("price", ASCENDING)], name="price")
    await col.create_index([("name", ASCENDING)], name="name")
    await col.create_index([("updated_at", DESCENDING)], name="updated_at")
    await col.create_index([("created_at", DESCENDING)], name="created_at")


class Pointer:
    """The ``read_model_pointers`` document of ``products``.

    ``active`` is what readers (and the live projector) use; ``next`` is set only while a
    rebuild catches up, and the live projector then writes both (see docs/projector.md).
    """

    def __init__(self, db: AsyncDatabase[Document], name: str = PRODUCTS_READ_MODEL) -> None:
        self.db = db
        self.name = name

    async def read(self) -> Document:
        doc = await self.db[READ_MODEL_POINTERS].find_one({"_id": self.name})
        return doc or {"_id": self.name, "active": self.name}

    async def targets(self) -> list[str]:
        doc = await self.read()
        targets = [str(doc.get("active") or self.name)]
        following = doc.get("next")
        if following and following not in targets:
            targets.append(str(following))
        return targets

    async def update(self, fields: Document, unset: Sequence[str] = ()) -> None:
        change: Document = {"$set": fields}
        if unset:
            change["$unset"] = dict.fromkeys(unset, "")
        await self.db[READ_MODEL_POINTERS].update_one({"_id": self.name}, change, upsert=True)


async def ensure_read_model(db: AsyncDatabase[Document]) -> None:
    """Indexes of the active products collection and of the stats helpers; idempotent."""
    for collection in await Pointer(db).targets():
        await ensure_product_indexes(db, collection)
    await db[CATEGORY_STATS_READ_MODEL].create_index([("active_count", DESCENDING)], name="count")
    await db[MEMBERS].create_index([("category", ASCENDING)], name="category")
    from projector.stats import ensure_indexes

    await ensure_indexes(db)
