"""Read-model database access the projector needs beyond the library: the pointer document,
declared indexes, conditional multi-updates and first inserts with per-operation conflict reporting.

Writes are ordered ``bulk_write`` calls: the operations before a failing one applied, none
after it, so a batch recomputed after a :class:`WriteConflict` redoes only idempotent work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

from tandem.app import Index
from tandem.runtime.contract import READ_MODEL_POINTERS

Document = dict[str, Any]
DUPLICATE_KEY = 11000
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86
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


async def ensure_indexes(
    db: AsyncDatabase[Document], collection: str, indexes: Sequence[Index]
) -> None:
    """The declared indexes of a read model's collection (the query side's filters and sorts
    need them); idempotent."""
    for index in indexes:
        try:
            await db[collection].create_index(
                list(index.keys), name=index.name, unique=index.unique
            )
        except OperationFailure as exc:
            # The same keys under an older name (collections made before the declaration
            # named its indexes): the index is there, which is all the readers need.
            if exc.code not in (INDEX_OPTIONS_CONFLICT, INDEX_KEY_SPECS_CONFLICT):
                raise


class Pointer:
    """The ``read_model_pointers`` document of one read model.

    ``active`` is what readers (and the live projector) use; ``next`` is set only while a
    rebuild catches up, and the live projector then writes both (see docs/projector.md).
    """

    def __init__(self, db: AsyncDatabase[Document], name: str) -> None:
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
