"""In-memory event store for unit tests and single-process tools.

It keeps event objects as given (no serialization), so tests can assert on identity and on
classes defined inside a test. Each ``append`` runs without an ``await`` between its check and
its write, which is what makes it atomic under asyncio; it is not thread-safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from tandem.errors import ConcurrencyError
from tandem.event_store.protocol import StoredCommit, as_commit, commit_id_for, stamp_versions
from tandem.events import DomainEvent


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryEventStore:
    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._commits: list[StoredCommit] = []
        self._streams: dict[str, list[int]] = {}
        self._by_id: dict[str, int] = {}

    async def append(
        self,
        events: DomainEvent | Sequence[DomainEvent],
        expected_version: int | None = None,
        *,
        expected_is_boundary: bool = False,  # the in-memory check is free; always checked
    ) -> int:
        batch = as_commit(events)
        aggregate_id = batch[0].aggregate_id
        current = self._current(aggregate_id)
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(aggregate_id, expected_version, current)
        stamped = stamp_versions(batch, current + 1)
        commit = StoredCommit(
            position=len(self._commits) + 1,
            commit_id=commit_id_for(aggregate_id, current + 1),
            aggregate_id=aggregate_id,
            aggregate_type=batch[0].aggregate_type,
            version=current + 1,
            last_version=stamped[-1].version,
            events=tuple(stamped),
            committed_at=self._clock(),
        )
        self._by_id[commit.commit_id] = len(self._commits)
        self._streams.setdefault(aggregate_id, []).append(len(self._commits))
        self._commits.append(commit)
        return commit.last_version

    async def get_events(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]:
        return [
            event
            for index in self._streams.get(aggregate_id, ())
            if self._commits[index].last_version >= from_version
            for event in self._commits[index].events
            if event.version >= from_version
        ]

    async def read_stream(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]:
        return await self.get_events(aggregate_id, from_version)

    async def current_version(self, aggregate_id: str) -> int:
        return self._current(aggregate_id)

    async def read_all(self, after: int | None = None, limit: int = 1000) -> list[StoredCommit]:
        start = after or 0  # positions are list index + 1
        return self._commits[start : start + limit]

    async def mark_published(self, commit_ids: Iterable[str]) -> None:
        for commit_id in commit_ids:
            index = self._by_id.get(commit_id)
            if index is not None:
                self._commits[index] = dataclasses.replace(self._commits[index], published=True)

    async def list_unpublished(
        self, older_than: timedelta = timedelta(0), limit: int = 100
    ) -> list[StoredCommit]:
        cutoff = self._clock() - older_than
        pending = (c for c in self._commits if not c.published and c.committed_at <= cutoff)
        return [commit for _, commit in zip(range(limit), pending, strict=False)]

    def _current(self, aggregate_id: str) -> int:
        stream = self._streams.get(aggregate_id)
        return self._commits[stream[-1]].last_version if stream else 0


__all__ = ["InMemoryEventStore"]
