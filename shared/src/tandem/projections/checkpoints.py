"""Checkpoint stores: the last event version each projection applied, per aggregate.

This is the seed's "projection repository". Checkpoints only move forward, so a late writer
that lost a race cannot roll one back.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ProjectionRepository(Protocol):
    async def get_version(self, projection: str, aggregate_id: str) -> int:
        """0 when the projection has applied nothing for that aggregate."""
        ...

    async def set_version(self, projection: str, aggregate_id: str, version: int) -> None: ...

    async def reset(self, projection: str | None = None) -> None: ...


class InMemoryProjectionRepository:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], int] = {}

    async def get_version(self, projection: str, aggregate_id: str) -> int:
        return self._versions.get((projection, aggregate_id), 0)

    async def set_version(self, projection: str, aggregate_id: str, version: int) -> None:
        key = (projection, aggregate_id)
        self._versions[key] = max(version, self._versions.get(key, 0))

    async def reset(self, projection: str | None = None) -> None:
        if projection is None:
            self._versions.clear()
        else:
            for key in [key for key in self._versions if key[0] == projection]:
                del self._versions[key]
