"""The event store port: the write side's source of truth.

Versions: an event's ``version`` is its aggregate's version after it, starting at 1 and without
gaps. The store assigns them: ``append`` stamps the events ``current + 1 ...`` (copying only those
whose version differs), so a caller without an aggregate (the seed's handler) can append a bare
event; with ``expected_version`` the append only succeeds if the stream is exactly there.

One ``append`` is one *commit*: all its events land together or not at all, and a commit is also
the unit the outbox publishes and marks. A commit's id is deterministic
(:func:`commit_id_for`), so a publisher knows it without reading the store back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from tandem.events import DomainEvent


@dataclass(frozen=True, slots=True)
class StoredCommit:
    """One append as stored. ``position`` orders commits store-wide (ascending, unique, gaps
    allowed) and always orders one aggregate's commits by version."""

    position: int
    commit_id: str
    aggregate_id: str
    aggregate_type: str
    version: int
    last_version: int
    events: tuple[DomainEvent, ...]
    committed_at: datetime
    published: bool = False


@dataclass(frozen=True, slots=True)
class OutgoingCommit:
    """What a publisher needs of a commit: its id (to mark it) and its events in order.

    Every writer (the runtime's aggregate handler and the seed's
    ``EventSourcingReadModelCommandHandler``) hands one to its outbox right after the append;
    the relay builds them from :class:`StoredCommit` for what the fast path missed."""

    commit_id: str
    events: tuple[DomainEvent, ...]

    @classmethod
    def from_stored(cls, commit: StoredCommit) -> OutgoingCommit:
        return cls(commit.commit_id, commit.events)

    @classmethod
    def of(cls, events: Sequence[DomainEvent]) -> OutgoingCommit:
        """The commit of ``events`` as appended (stamped versions; one aggregate)."""
        return cls(commit_id_for(events[0].aggregate_id, events[0].version), tuple(events))


@runtime_checkable
class EventStore(Protocol):
    async def append(
        self,
        events: DomainEvent | Sequence[DomainEvent],
        expected_version: int | None = None,
        *,
        expected_is_boundary: bool = False,
    ) -> int:
        """Append one commit for one aggregate and return the stream's new version.

        ``expected_version=None`` appends after whatever is there; an int is the version the
        caller last saw (0 for a new stream) and a mismatch raises ``ConcurrencyError``.
        ``expected_is_boundary=True`` promises the version was read from the stream itself (the
        end of a whole commit), which lets a store skip its own version read.
        """
        ...

    async def get_events(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]:
        """Events of one stream with ``version >= from_version``, in version order; an unknown
        stream gives an empty list."""
        ...

    async def read_stream(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]: ...

    async def current_version(self, aggregate_id: str) -> int:
        """The stream's last version, 0 when it does not exist."""
        ...

    async def read_all(self, after: int | None = None, limit: int = 1000) -> list[StoredCommit]:
        """Commits with ``position > after`` in position order, for rebuilds.

        A commit can become visible after one with a higher position was read (positions are
        taken before the insert), so a live tail must tolerate gaps; a rebuild that then
        catches up from Kafka is unaffected because projections are idempotent.
        """
        ...

    async def mark_published(self, commit_ids: Iterable[str]) -> None: ...

    async def list_unpublished(
        self, older_than: timedelta = timedelta(0), limit: int = 100
    ) -> list[StoredCommit]:
        """Unpublished commits at least ``older_than`` old, oldest position first (so one
        aggregate's commits come in version order) — the outbox relay's work list."""
        ...


def commit_id_for(aggregate_id: str, first_version: int) -> str:
    return f"{aggregate_id}:{first_version:010d}"


def as_commit(events: DomainEvent | Sequence[DomainEvent]) -> list[DomainEvent]:
    """Normalise ``append``'s argument and refuse what cannot be one commit."""
    batch = [events] if isinstance(events, DomainEvent) else list(events)
    if not batch:
        raise ValueError("append needs at least one event")
    first = batch[0]
    for event in batch[1:]:
        if event.aggregate_id != first.aggregate_id:
            raise ValueError(
                "one commit holds one aggregate's events; "
                f"got {first.aggregate_id!r} and {event.aggregate_id!r}"
            )
    return batch


def stamp_versions(events: Sequence[DomainEvent], first_version: int) -> list[DomainEvent]:
    """Give ``events`` consecutive versions from ``first_version``; copies only when needed."""
    stamped: list[DomainEvent] = []
    for offset, event in enumerate(events):
        version = first_version + offset
        stamped.append(
            event if event.version == version else event.model_copy(update={"version": version})
        )
    return stamped


__all__ = ["EventStore", "StoredCommit", "as_commit", "commit_id_for", "stamp_versions"]
