"""Which MongoDB collection holds a read model right now (the projector's rebuild pointer).

The projector may rebuild a read model into a fresh collection and then switch readers to it
by writing ``read_model_pointers {_id: <read model>, active: "<collection>"}``. Reading the
pointer on every request would double the MongoDB round trips, so it is cached for
``refresh_seconds`` and refreshed at once when a ``ReadModelSwitched`` notice arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tandem.runtime.contract import READ_MODEL_POINTERS

Document = dict[str, Any]


class ActiveCollections:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        refresh_seconds: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._cached: dict[str, tuple[float, str]] = {}

    async def name(self, logical: str) -> str:
        cached = self._cached.get(logical)
        now = self._clock()
        if cached is not None and now - cached[0] < self.refresh_seconds:
            return cached[1]
        pointer = await self.database[READ_MODEL_POINTERS].find_one({"_id": logical})
        active = str(pointer["active"]) if pointer and pointer.get("active") else logical
        self._cached[logical] = (now, active)
        return active

    async def collection(self, logical: str) -> AsyncCollection[Document]:
        return self.database[await self.name(logical)]

    def invalidate(self, logical: str | None = None) -> None:
        """Forget one read model's pointer (every pointer without a name): the next read asks
        MongoDB again."""
        if logical is None:
            self._cached.clear()
        else:
            self._cached.pop(logical, None)
