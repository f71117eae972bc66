"""Totals read models (:class:`~tandem.app.TotalsProjection`): integer counters per group,
derived from a fold read model, exactly once in effect without transactions and without
concurrent writers of a totals document.

Why: this was written for FerretDB v1.24, whose ``$inc`` was not atomic across connections,
so several projector processes could not ``$inc`` one totals document. MongoDB's ``$inc`` is
(``deploy/tests/test_mongo_fidelity.py``); the design stays because it is exactly-once without
transactions (folding per partition owner would be a change of its own). Per totals read
model ``<name>``:

- ``<name>_members``: per source document, the contribution (group and counters) the totals
  hold now, at the source version that produced it. A document's change is always "its new
  contribution minus what ``members`` says", so a replay computes the same difference;
- ``<name>_deltas``: each partition's owner *inserts* its messages' shares with a
  deterministic ``_id`` (``<topic>__<partition>:<offset>:<group>``): a replayed message hits
  the unique ``_id`` and is not logged twice (inserts of one ``_id`` are atomic everywhere);
- ``<name>``: one process, the owner of partition 0 of the source's first topic, folds the
  logged deltas into the totals (``$inc`` plus ``offsets.<partition key>`` = highest folded
  offset, in the same compare-and-set update), then deletes them. A delta at or below its
  group's mark was folded already: one left behind by a crash before the delete, or logged
  again by a replay after it, is skipped. Deltas are read in (partition, offset) order, so a
  read cut short by its limit never marks past a delta it has not seen.

The totals never depend on the source collection (only on the event stream), so a rebuild of
the source cannot disturb them. A stored totals document is ``{_id: <group>, <counter>: int,
..., offsets: {...}}``; readers turn its counters (:func:`counters_of`) into what they serve
with the declaration's ``present``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from tandem.app import ReadModelSpec, TotalsProjection
from tandem.runtime.projector.store import (
    DUPLICATE_KEY,
    conditional_update,
    ensure_indexes,
    insert_new,
)

Document = dict[str, Any]
Counts = dict[str, int]
Share = tuple[str, Counts]
"""A normalised contribution: ``(group, {counter: integer})``."""
_MAX_INSERT = 5000
_NOT_COUNTERS = ("_id", "offsets")


def counters_of(doc: Mapping[str, Any]) -> dict[str, int]:
    """The counters of a stored totals document (what ``TotalsProjection.present`` takes)."""
    return {k: int(v) for k, v in doc.items() if k not in _NOT_COUNTERS}


@dataclass(frozen=True, slots=True)
class Delta:
    """One message's effect on one group."""

    key: str
    offset: int
    group: str
    counts: Counts

    @property
    def id(self) -> str:
        return f"{self.key}:{self.offset:012d}:{self.group}"


@dataclass(frozen=True, slots=True)
class SourceSteps:
    """One source document's part of a batch: the document after each version reached, and
    per message (partition key, offset, version after it), in offset order."""

    final_version: int
    states: Mapping[int, Document | None]
    steps: list[tuple[str, int, int]]


class Totals:
    """One totals read model's three collections and the writes of the batch and folder."""

    def __init__(self, spec: ReadModelSpec, db: AsyncDatabase[Document]) -> None:
        if not isinstance(spec.projection, TotalsProjection):
            raise TypeError(f"{spec.name} is not a totals read model")
        self.spec = spec
        self.contribution = spec.projection.contribution
        self.db = db
        self.collection = spec.collection
        self.deltas = f"{spec.name}_deltas"
        self.members = f"{spec.name}_members"

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.db, self.collection, self.spec.indexes)
        await self.db[self.deltas].create_index(
            [("key", ASCENDING), ("offset", ASCENDING)], name="key_offset"
        )
        await self.db[self.members].create_index([("group", ASCENDING)], name="group")

    def share_of(self, doc: Document | None) -> Share | None:
        share = self.contribution(doc)
        if share is None:
            return None
        counts = {k: int(v) for k, v in share[1].items()}
        bad = [k for k in counts if k in _NOT_COUNTERS or "." in k or k.startswith("$")]
        if bad:  # they would clash with the bookkeeping or not be a field name at all
            raise ValueError(f"{self.spec.name}: counter names {bad} are not allowed")
        return str(share[0]), counts

    async def load_members(self, ids: list[str]) -> dict[str, Document]:
        cursor = self.db[self.members].find({"_id": {"$in": ids}})
        return {doc["_id"]: doc async for doc in cursor}

    # --- the batch -------------------------------------------------------------------------

    async def write(
        self, batch: Mapping[str, SourceSteps], members: Mapping[str, Document]
    ) -> None:
        """Log the batch's deltas, then move ``members`` (see the module docstring)."""
        await self.log(self._deltas(batch, members))
        await self._write_members(batch, members)

    def _deltas(
        self, batch: Mapping[str, SourceSteps], members: Mapping[str, Document]
    ) -> list[Delta]:
        """Steps at or below the version ``members`` holds are counted already: a crash after
        the ``members`` write and before the source write replays them from an older state."""
        combined: dict[tuple[str, int, str], Counts] = {}
        for aggregate_id, item in batch.items():
            member = members.get(aggregate_id)
            prev = _member_share(member)
            held = int(member.get("version", 0)) if member else 0
            for key, offset, version in item.steps:
                if version <= held:
                    continue
                cur = self.share_of(item.states[version])
                if cur != prev:
                    for group, counts in _difference(prev, cur):
                        totals = combined.setdefault((key, offset, group), {})
                        for counter, value in counts.items():
                            totals[counter] = totals.get(counter, 0) + value
                prev = cur
        return [Delta(k, o, g, counts) for (k, o, g), counts in combined.items()]

    async def _write_members(
        self, batch: Mapping[str, SourceSteps], members: Mapping[str, Document]
    ) -> None:
        """Compare-and-set on the version read at the start of the batch: a second writer of
        the same document (a partition's old owner after a rebalance) conflicts instead of
        moving ``members`` back, and the batch is recomputed."""
        new, updates = [], []
        for aggregate_id, item in batch.items():
            cur = self.share_of(item.states[item.steps[-1][2]]) if item.steps else None
            stored = members.get(aggregate_id)
            if cur == _member_share(stored):
                continue
            member: Document = {
                "group": cur[0] if cur else None,
                "counts": cur[1] if cur else {},
                "version": item.final_version,
            }
            if stored is None:  # a first contribution: an insert, refused if another came first
                new.append({"_id": aggregate_id, **member})
                continue
            query: Document = {"_id": aggregate_id, "version": stored["version"]}
            updates.append({"q": query, "u": {"$set": member}, "upsert": True})
        if new:
            await insert_new(self.db, self.members, new)
        if updates:
            await conditional_update(self.db, self.members, updates)

    async def log(self, deltas: Iterable[Delta]) -> int:
        """Insert deltas in (partition, offset) order; already logged ones are skipped. Returns
        how many were new. Ordered inserts keep "logged" a prefix if the process dies midway."""
        docs = [
            {"_id": d.id, "key": d.key, "offset": d.offset, "group": d.group, "counts": d.counts}
            for d in sorted(deltas, key=lambda d: (d.key, d.offset, d.group))
            if any(d.counts.values())
        ]
        inserted = 0
        while docs:
            chunk = docs[:_MAX_INSERT]
            reply = await self.db.command(
                {"insert": self.deltas, "documents": chunk, "ordered": True}
            )
            errors = reply.get("writeErrors") or []
            if not errors:
                inserted += len(chunk)
                docs = docs[len(chunk) :]
                continue
            index = int(errors[0]["index"])
            if errors[0].get("code") != DUPLICATE_KEY:
                raise RuntimeError(f"{self.deltas} insert failed: {errors[0]}")
            inserted += index
            docs = docs[index + 1 :]  # this one was logged by an earlier attempt
        return inserted

    # --- the folder ------------------------------------------------------------------------

    async def fold(self, limit: int = 20_000) -> int:
        """Fold the logged deltas into the totals; only the folder process calls this."""
        entries = await (
            self.db[self.deltas]
            .find({}, sort=[("key", ASCENDING), ("offset", ASCENDING)], limit=limit)
            .to_list()
        )
        if not entries:
            return 0
        groups = sorted({e["group"] for e in entries})
        cursor = self.db[self.collection].find({"_id": {"$in": groups}})
        stored = {doc["_id"]: doc async for doc in cursor}
        sums: dict[str, Counts] = defaultdict(dict)
        highest: dict[str, dict[str, int]] = defaultdict(dict)
        for entry in entries:
            group, key, offset = entry["group"], entry["key"], int(entry["offset"])
            folded = stored.get(group, {}).get("offsets", {}).get(key, -1)
            marks = highest[group]
            marks[key] = max(marks.get(key, folded), offset)
            if offset <= folded:
                continue  # folded before a crash, just not marked
            for counter, value in entry["counts"].items():
                sums[group][counter] = sums[group].get(counter, 0) + int(value)
        updates = []
        for group in groups:
            doc = stored.get(group)
            offsets = doc.get("offsets", {}) if doc else {}
            # Compare-and-set on the marks of the partitions folded here: a second folder
            # (briefly, around a rebalance) that folded them first makes this one conflict.
            query: Document = {"_id": group}
            for key in sorted(highest[group]):
                query[f"offsets.{key}"] = offsets.get(key, {"$exists": False})
            change: Document = {
                "$set": {f"offsets.{k}": v for k, v in sorted(highest[group].items())}
            }
            if sums.get(group):
                change["$inc"] = dict(sorted(sums[group].items()))
            updates.append({"q": query, "u": change, "upsert": True})
        await conditional_update(self.db, self.collection, updates)
        await self.db[self.deltas].delete_many({"_id": {"$in": [e["_id"] for e in entries]}})
        return len(entries)


def _member_share(doc: Mapping[str, Any] | None) -> Share | None:
    if not doc or doc.get("group") is None:
        return None
    return str(doc["group"]), {k: int(v) for k, v in (doc.get("counts") or {}).items()}


def _difference(prev: Share | None, cur: Share | None) -> list[Share]:
    out: list[Share] = []
    if prev is not None:
        out.append((prev[0], {k: -v for k, v in prev[1].items()}))
    if cur is not None:
        out.append(cur)
    return out


__all__ = ["Delta", "SourceSteps", "Totals", "counters_of"]
