"""``category_stats`` without concurrent writers: a delta log and a single folder.

Why: this was written for FerretDB v1.24, whose ``$inc`` was not atomic across connections,
so several projector processes could not ``$inc`` one category document. MongoDB's ``$inc`` is
(``deploy/tests/test_mongo_fidelity.py``); the design stays because it is still exactly-once
without transactions, and folding per partition owner is a change of its own:

- each partition's owner *inserts* its messages' shares into ``category_stats_deltas`` with a
  deterministic ``_id`` (``<topic>__<partition>:<offset>:<category>``): a replayed message hits
  the unique ``_id`` and is not logged twice (inserts of one ``_id`` are atomic everywhere);
- one process, the owner of partition 0 of the first topic, folds the logged deltas into
  ``category_stats`` (``$inc`` plus ``offsets.<partition key>`` = highest folded offset, in the
  same update), then deletes them. A delta at or below its category's mark was folded already:
  one left behind by a crash before the delete, or logged again by a replay after it, is
  skipped, so nothing is counted twice, and the log holds only what is not folded yet (so
  reading it stays cheap). Deltas are read in (partition, offset) order, so a read cut short by its limit
  never marks past a delta it has not seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from tandem_catalog.contract import CATEGORY_STATS_READ_MODEL

from projector.store import DUPLICATE_KEY, conditional_update

Document = dict[str, Any]
DELTAS = "category_stats_deltas"
_MAX_INSERT = 5000


@dataclass(frozen=True, slots=True)
class Share:
    """One message's effect on one category."""

    key: str
    offset: int
    category: str
    count: int
    cents: int

    @property
    def id(self) -> str:
        return f"{self.key}:{self.offset:012d}:{self.category}"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[DELTAS].create_index([("key", ASCENDING), ("offset", ASCENDING)], name="key_offset")


async def log_shares(db: AsyncDatabase[Document], shares: Iterable[Share]) -> int:
    """Insert shares in (partition, offset) order; already logged ones are skipped. Returns how
    many were new. Ordered inserts keep "logged" a prefix even if the process dies midway."""
    docs = [
        {
            "_id": s.id,
            "key": s.key,
            "offset": s.offset,
            "category": s.category,
            "count": s.count,
            "cents": s.cents,
        }
        for s in sorted(shares, key=lambda s: (s.key, s.offset, s.category))
        if s.count or s.cents
    ]
    inserted = 0
    while docs:
        chunk = docs[:_MAX_INSERT]
        reply = await db.command({"insert": DELTAS, "documents": chunk, "ordered": True})
        errors = reply.get("writeErrors") or []
        if not errors:
            inserted += len(chunk)
            docs = docs[len(chunk) :]
            continue
        index = int(errors[0]["index"])
        if errors[0].get("code") != DUPLICATE_KEY:
            raise RuntimeError(f"{DELTAS} insert failed: {errors[0]}")
        inserted += index
        docs = docs[index + 1 :]  # this one was logged by an earlier attempt
    return inserted


async def fold_deltas(db: AsyncDatabase[Document], limit: int = 20_000) -> int:
    """Fold the logged deltas into ``category_stats``; only the folder process calls this."""
    entries = await (
        db[DELTAS].find({}, sort=[("key", ASCENDING), ("offset", ASCENDING)], limit=limit).to_list()
    )
    if not entries:
        return 0
    categories = sorted({e["category"] for e in entries})
    cursor = db[CATEGORY_STATS_READ_MODEL].find({"_id": {"$in": categories}})
    stats = {doc["_id"]: doc async for doc in cursor}
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    highest: dict[str, dict[str, int]] = defaultdict(dict)
    for entry in entries:
        category, key, offset = entry["category"], entry["key"], int(entry["offset"])
        folded = stats.get(category, {}).get("offsets", {}).get(key, -1)
        marks = highest[category]
        marks[key] = max(marks.get(key, folded), offset)
        if offset <= folded:
            continue  # folded before a crash, just not marked
        sums[category][0] += int(entry["count"])
        sums[category][1] += int(entry["cents"])
    updates = []
    for category in categories:
        doc = stats.get(category)
        offsets = doc.get("offsets", {}) if doc else {}
        # Compare-and-set on what was read: the marks of the partitions folded here and the
        # cents, so ``price_sum`` (the contract's number) can be set from the exact integer
        # cents in the same update, without float increments or a second read and write.
        held = int(doc["price_sum_cents"]) if doc and "price_sum_cents" in doc else None
        query: Document = {"_id": category}
        query["price_sum_cents"] = held if held is not None else {"$exists": False}
        for key in sorted(highest[category]):
            query[f"offsets.{key}"] = offsets.get(key, {"$exists": False})
        count, cents = sums.get(category, [0, 0])
        marks = {f"offsets.{k}": v for k, v in sorted(highest[category].items())}
        updates.append(
            {
                "q": query,
                "u": {
                    "$inc": {"active_count": count, "price_sum_cents": cents},
                    "$set": {**marks, "price_sum": round(((held or 0) + cents) / 100, 2)},
                },
                "upsert": True,
            }
        )
    await conditional_update(db, CATEGORY_STATS_READ_MODEL, updates)
    await db[DELTAS].delete_many({"_id": {"$in": [e["_id"] for e in entries]}})
    return len(entries)
