"""Search pages remembered until the next change notice.

A search reads every row its filter selects (an index cannot serve a substring ``$regex``),
twice: once for the page, once for the total. Read traffic repeats itself (popular filters
and terms, page 1), and between two changes to the read model the answer
cannot differ, so this process keeps recent answers and drops them all at the next change
notice: a search is never older than the notices this process has seen, the same promise the
document LRU makes. One instance per read model: only that read model's notices clear it.

* Any notice of its read model, a rebuild switch or a subscriber reconnect bumps the generation and
  clears the entries. A search records the generation before it reads MongoDB and is stored
  only if no notice arrived meanwhile, so a read racing a change never outlives it.
* While the change-notice subscriber is disconnected nothing is served or stored (notices
  may be lost then); the TTL bounds what a lost notice could leave behind otherwise.
* ``size`` 0 turns it off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tandem.runtime.query.metrics import CACHE_LOOKUPS

Key = tuple[Any, ...]

_HIT = CACHE_LOOKUPS.labels("search", "hit")
_MISS = CACHE_LOOKUPS.labels("search", "miss")


class SearchCache:
    def __init__(
        self,
        size: int,
        ttl: float,
        *,
        live: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.generation = 0
        self.live = live
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, Any]] = OrderedDict()

    def get(self, key: Key) -> Any | None:
        if self.size <= 0:
            return None
        entry = self._entries.get(key) if self.live() else None
        if entry is None or self._clock() >= entry[0]:
            _MISS.inc()
            return None
        self._entries.move_to_end(key)
        _HIT.inc()
        return entry[1]

    def put(self, key: Key, generation: int, value: Any) -> None:
        """Store ``value``, read when the generation was ``generation``, unless it moved on."""
        if self.size <= 0 or generation != self.generation or not self.live():
            return
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def invalidate(self, *_: Any) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
