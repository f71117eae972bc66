"""Read-model database access the projector needs beyond the library: the pointer document,
declared indexes, conditional multi-updates and first inserts with per-operation conflict reporting.

Why raw ``update`` commands instead of ``bulk_write``: FerretDB v1.24 stops at the first write
error even with ``ordered: false`` and omits ``nModified`` from such replies, which makes
PyMongo's bulk result merging raise ``KeyError``. Sending ``ordered: true`` ourselves gives the
same semantics on MongoDB and FerretDB: operations before the failing index applied, none after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from tandem.app import Index
from tandem.runtime.contract import READ_MODEL_POINTERS

Document = dict[str, Any]
DUPLICATE_KEY = 11000
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86
MAX_OPS_PER_COMMAND = 500
"""Updates per ``update`` command. Stock FerretDB v1.24.2 deadlocks a database once 100 update
statements are in flight on it (it keeps one of its 100 SQLite connections per statement until
the command ends); the FerretDB that ``deploy/local/stack.py`` builds carries the fix (see
``deploy/local/ferretdb_patches.py``). Against a stock FerretDB v1.24 keep this below 100 / the
number of projector processes."""


class WriteConflict(Exception):
    """A conditional write found another version than expected (a concurrent writer or a stale
    read). The batch is recomputed from fresh reads; every write in it is idempotent."""


async def conditional_update(
    db: AsyncDatabase[Document], collection: str, updates: Sequence[Document]
) -> None:
    """Run ``{"q", "u", "upsert"}`` updates in order, one command per chunk; raise
    :class:`WriteConflict` on a duplicate-key error (the failed condition of an upsert)."""
    await _ordered(db, "update", "updates", collection, updates)


async def insert_new(
    db: AsyncDatabase[Document], collection: str, documents: Sequence[Document]
) -> None:
    """Insert documents that must not exist yet (an aggregate's first write), in order;
    raise :class:`WriteConflict` when one does (another writer created it first).

    Why not the upsert that :func:`conditional_update` sends: on FerretDB an update statement
    reads, decodes and rewrites a document on its own (270 us each, measured), where an
    insert of many is one statement (33 us a document); a replay is mostly first writes.
    """
    await _ordered(db, "insert", "documents", collection, documents)


async def _ordered(
    db: AsyncDatabase[Document],
    command: str,
    field: str,
    collection: str,
    items: Sequence[Document],
) -> None:
    """One ``ordered: true`` command per chunk: what precedes a failed item applied, nothing
    after it; a duplicate key is a :class:`WriteConflict`, any other error a bug."""
    for start in range(0, len(items), MAX_OPS_PER_COMMAND):
        chunk = list(items[start : start + MAX_OPS_PER_COMMAND])
        reply = await db.command({command: collection, field: chunk, "ordered": True})
        errors = reply.get("writeErrors") or []
        if not errors:
            continue
        first = errors[0]
        if first.get("code") == DUPLICATE_KEY:
            raise WriteConflict(f"{collection}: {first.get('errmsg')}")
        raise RuntimeError(f"{collection} {command} failed: {first}")


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
