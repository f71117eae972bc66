"""Aggregate snapshots: a cache of replayed state, never a source of truth.

A snapshot holds the state of an aggregate at ``version``; loading applies the events after it.
Deleting every snapshot must leave behaviour unchanged, so a snapshot store may lose or hold
stale entries freely (an older snapshot just means more events to replay).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Snapshot:
    aggregate_id: str
    aggregate_type: str
    version: int
    state: dict[str, Any] = field(default_factory=dict)


class SnapshotStore(Protocol):
    async def get(self, aggregate_id: str) -> Snapshot | None: ...

    async def save(self, snapshot: Snapshot) -> None: ...


class InMemorySnapshotStore:
    """Deep-copies on the way in and out so later mutation of an aggregate cannot alter a
    stored snapshot (the bug a real store would hide)."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}

    async def get(self, aggregate_id: str) -> Snapshot | None:
        return copy.deepcopy(self._snapshots.get(aggregate_id))

    async def save(self, snapshot: Snapshot) -> None:
        current = self._snapshots.get(snapshot.aggregate_id)
        if current is None or current.version < snapshot.version:
            self._snapshots[snapshot.aggregate_id] = copy.deepcopy(snapshot)

    def clear(self) -> None:
        self._snapshots.clear()


__all__ = ["InMemorySnapshotStore", "Snapshot", "SnapshotStore"]
