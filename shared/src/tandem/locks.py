"""Striped asyncio locks: serialise work per key with a fixed number of locks.

Used where one process must not interleave two deliveries of the same aggregate (the
projection service applies an aggregate's events in order). Not for the database's sake: a
conditional single-document update is atomic on MongoDB, across processes too.
"""

from __future__ import annotations

import asyncio
import zlib


class StripedLocks:
    def __init__(self, stripes: int = 64) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def for_key(self, key: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]
