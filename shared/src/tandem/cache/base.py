"""The read-model cache port.

Keys are read-model ids and values are JSON-compatible objects (what ``model_dump(mode="json")``
returns), so one cache holds one read-model type: give each type its own instance or Redis
prefix. That convention is what lets :meth:`ReadModelCache.invalidate_by_event` work without
knowing any projection: an event invalidates the entry named by its ``aggregate_id``.

A cache is an optimisation, so no implementation may raise to a reader because its backend is
down: a failed ``get`` is a miss and a failed write is skipped (both logged and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


@runtime_checkable
class ReadModelCache(Protocol):
    stats: CacheStats

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def invalidate(self, key: str) -> None: ...

    async def invalidate_by_event(self, event: Any) -> None: ...

    async def clear(self) -> None: ...


def event_key(event: Any) -> str | None:
    """The cache key an event invalidates: its aggregate id (see the module docstring)."""
    key = getattr(event, "aggregate_id", None)
    if key is None and isinstance(event, dict):
        key = event.get("aggregate_id", event.get("id"))
    return str(key) if key is not None else None
