"""Event store on MongoDB: one document per commit.

Why this shape (see DESIGN.md): a single-document insert is atomic on every MongoDB-wire server,
so a commit needs no transaction. Optimistic concurrency rests on the unique index
``(aggregate_id, version)`` where ``version`` is the commit's *first* version: an append first
checks that the stream is at ``expected_version`` and then inserts at ``expected_version + 1``;
two writers that both passed the check insert the same key and exactly one wins. A writer whose
check read a stale state can only have seen a *lower* version, which fails the check itself,
so the pair (check, unique insert) is sound without locks.

When the caller has just read the stream (``expected_is_boundary=True``, as
:class:`~tandem.aggregate.AggregateRepository` does), the check is skipped: a version the
caller read is the last version of a whole commit, the next commit of the stream always starts
right after it, so the unique index alone decides the race. That makes an append one round trip.
A client-supplied version (``If-Match``) may point into the middle of a multi-event commit, so it
must be compared with the loaded aggregate first, which the repository's callers do.

Store order: ``position`` is the commit time in microseconds times 1000 plus a per-process
sequence, so it costs no round trip. A counter document (``$inc``) would give a gapless order at
the price of a round trip and one hot document per append. Positions order commits by commit
time; within one stream, ``version`` is the order to trust (readers sort a stream by version).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.codec_options import CodecOptions
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from tandem.errors import ConcurrencyError
from tandem.event_store.protocol import StoredCommit, as_commit, commit_id_for, stamp_versions
from tandem.events import DomainEvent, EventRegistry, default_registry

Document = dict[str, Any]
_FIRST_WINDOW = 64
_MAX_WINDOW = 1024
_CODEC = CodecOptions[Document](tz_aware=True, tzinfo=UTC)


class MongoEventStore:
    """``append`` retries only the unchecked case (``expected_version=None``): there a lost race
    just means "append after the winner"."""

    def __init__(
        self,
        database: AsyncDatabase[Any],
        collection: str = "events",
        registry: EventRegistry = default_registry,
        *,
        max_unchecked_retries: int = 20,
    ) -> None:
        self._commits: AsyncCollection[Document] = database.get_collection(
            collection, codec_options=_CODEC
        )
        self._registry = registry
        self._max_retries = max_unchecked_retries

    async def ensure_indexes(self) -> None:
        """Create the indexes correctness depends on; call once from the composition root."""
        await self._commits.create_index(
            [("aggregate_id", ASCENDING), ("version", ASCENDING)],
            unique=True,
            name="stream_version_unique",
        )
        await self._commits.create_index([("position", ASCENDING)], name="position")
        await self._commits.create_index(
            [("published", ASCENDING), ("committed_at", ASCENDING)], name="outbox"
        )

    async def append(
        self,
        events: DomainEvent | Sequence[DomainEvent],
        expected_version: int | None = None,
        *,
        expected_is_boundary: bool = False,
    ) -> int:
        batch = as_commit(events)
        aggregate_id = batch[0].aggregate_id
        # Version 0 is always a boundary: the unique (aggregate_id, 1) key decides a creation race.
        trusted = expected_version is not None and (expected_is_boundary or expected_version == 0)
        for _ in range(self._max_retries + 1):
            if trusted and expected_version is not None:
                current = expected_version
            else:
                current = await self.current_version(aggregate_id)
            if expected_version is not None and current != expected_version:
                raise ConcurrencyError(aggregate_id, expected_version, current)
            stamped = stamp_versions(batch, current + 1)
            document = self._document(stamped)
            try:
                await self._commits.insert_one(document)
            except DuplicateKeyError:
                if expected_version is not None:
                    actual = await self.current_version(aggregate_id)
                    raise ConcurrencyError(aggregate_id, expected_version, actual) from None
                continue
            return stamped[-1].version
        actual = await self.current_version(aggregate_id)
        raise ConcurrencyError(aggregate_id, None, actual)

    async def get_events(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]:
        fields = {"events": True}
        if from_version <= 1:
            documents = await self._stream(aggregate_id, fields)
        else:
            documents = await self._stream_from(aggregate_id, from_version, fields)
        deserialize = self._registry.deserialize
        result: list[DomainEvent] = []
        for document in documents:
            for data in document["events"]:
                if data["version"] >= from_version:
                    result.append(deserialize(data))
        return result

    async def _stream_from(
        self, aggregate_id: str, from_version: int, projection: Document
    ) -> list[Document]:
        """The commits holding ``from_version`` and later (a snapshot's load, gap healing).

        First the commits starting at ``from_version`` and after, as :meth:`_stream` reads
        them; after a snapshot, taken at the end of a commit, that is the whole answer. If no
        commit starts at ``from_version``, one that started before may hold it: the latest
        commit starting below it is looked for in windows growing back from it (1, 4, 16, 64
        first versions), so a stream of single-event commits costs one more document, not a
        window of them (written when FerretDB answered a query on ``aggregate_id`` by reading
        every commit; on MongoDB both are index reads). Only a commit of more than 64 events across ``from_version``
        makes it read the stream from its start.
        """
        after = await self._stream(aggregate_id, projection, start=from_version)
        if after and int(after[0]["version"]) == from_version:
            return after
        fields = {**projection, "version": True, "last_version": True}
        width, hi = 1, from_version  # look for first versions in [hi - width, hi)
        while hi > 1:
            lo = max(1, from_version - width)
            ids = [commit_id_for(aggregate_id, v) for v in range(lo, hi)]
            cursor = self._commits.find({"_id": {"$in": ids}}, projection=fields)
            below = [d async for d in cursor]
            if below:
                # Contiguous commits: the latest one starting below holds ``from_version``,
                # or ends right before it (then nothing starts at ``from_version``: the end).
                holder = max(below, key=lambda d: int(d["version"]))
                last = int(holder["last_version"])
                if last < from_version:
                    return []
                if last + 1 >= from_version + _FIRST_WINDOW:  # it outlasts the first window
                    after = await self._stream(aggregate_id, projection, start=last + 1)
                return [holder, *after]
            if width >= _FIRST_WINDOW:
                found = await self._stream(aggregate_id, projection)
                return [d for d in found if int(d["last_version"]) >= from_version]
            hi, width = lo, width * 4
        return []  # nothing starts at version 1: no stream

    async def _stream(
        self, aggregate_id: str, projection: Document, start: int = 1
    ) -> list[Document]:
        """A stream's commits in order, found by their ``_id`` (``<aggregate>:<first version>``).

        Why not ``{aggregate_id: ...}``: written for FerretDB v1, which filtered any field but
        ``_id`` by reading the whole collection (a load cost a scan of every commit). On
        MongoDB the unique ``(aggregate_id, version)`` index would serve that query as well;
        the ``_id`` windows are kept, correct and one round trip for most streams. Commits of a stream
        are contiguous, so a window of candidate first versions is complete once the next
        commit would have started inside it; windows double, so a stream of N versions takes
        about log2(N / 64) + 1 round trips.
        """
        found: list[Document] = []
        width = _FIRST_WINDOW
        fields = {**projection, "version": True, "last_version": True}
        while True:
            ids = [commit_id_for(aggregate_id, v) for v in range(start, start + width)]
            cursor = self._commits.find({"_id": {"$in": ids}}, projection=fields)
            window = sorted([d async for d in cursor], key=lambda d: int(d["version"]))
            found.extend(window)
            if not window:
                return found
            last = int(window[-1]["last_version"])
            if last + 1 < start + width:
                return found  # the next commit, if any, would start inside this window
            start, width = last + 1, min(width * 2, _MAX_WINDOW)

    async def read_stream(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]:
        return await self.get_events(aggregate_id, from_version)

    async def current_version(self, aggregate_id: str) -> int:
        documents = await self._stream(aggregate_id, {"_id": True})
        return int(documents[-1]["last_version"]) if documents else 0

    async def read_all(self, after: int | None = None, limit: int = 1000) -> list[StoredCommit]:
        query: Document = {} if after is None else {"position": {"$gt": after}}
        cursor = self._commits.find(query, sort=[("position", ASCENDING)], limit=limit)
        return [self._commit(document) async for document in cursor]

    async def mark_published(self, commit_ids: Iterable[str]) -> None:
        ids = list(commit_ids)
        if ids:
            await self._commits.update_many({"_id": {"$in": ids}}, {"$set": {"published": True}})

    async def list_unpublished(
        self, older_than: timedelta = timedelta(0), limit: int = 100
    ) -> list[StoredCommit]:
        cutoff = datetime.now(UTC) - older_than
        cursor = self._commits.find(
            {"published": False, "committed_at": {"$lte": cutoff}},
            sort=[("position", ASCENDING)],
            limit=limit,
        )
        return [self._commit(document) async for document in cursor]

    def _document(self, stamped: list[DomainEvent]) -> Document:
        first = stamped[0]
        return {
            "_id": commit_id_for(first.aggregate_id, first.version),
            "aggregate_id": first.aggregate_id,
            "aggregate_type": first.aggregate_type,
            "version": first.version,
            "last_version": stamped[-1].version,
            "position": _next_position(),
            "events": [event.to_dict() for event in stamped],
            "published": False,
            # BSON keeps milliseconds; truncating here keeps what we return equal to what we read.
            "committed_at": _now_ms(),
        }

    def _commit(self, document: Mapping[str, Any]) -> StoredCommit:
        deserialize = self._registry.deserialize
        return StoredCommit(
            position=int(document["position"]),
            commit_id=str(document["_id"]),
            aggregate_id=document["aggregate_id"],
            aggregate_type=document["aggregate_type"],
            version=int(document["version"]),
            last_version=int(document["last_version"]),
            events=tuple(deserialize(data) for data in document["events"]),
            committed_at=document["committed_at"],
            published=bool(document["published"]),
        )


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


__all__ = ["MongoEventStore"]


_sequence = itertools.count()
_process_salt = os.getpid() % 1000


def _next_position() -> int:
    """Commit-time order without a round trip: microseconds * 1000 + a per-process sequence."""
    return time.time_ns() // 1000 * 1000 + (next(_sequence) + _process_salt) % 1000
