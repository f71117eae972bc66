"""Read-your-writes: wait until the read model of an id reaches a version, woken by notices.

A waiter is an asyncio future keyed by document id (one instance per read model) and resolved by the change-notice listener
when a notice for that id carries a version at or above the one awaited. There is no polling:
a reader waits once per notice of its id, bounded by its deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.metrics import VERSION_WAITING


class VersionWaiters:
    def __init__(self) -> None:
        self._waiters: dict[str, list[tuple[int, asyncio.Future[int]]]] = {}

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._waiters.values())

    def register(self, key: str, version: int) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append((version, future))
        return future

    def discard(self, key: str, future: asyncio.Future[int]) -> None:
        waiting = self._waiters.get(key)
        if waiting is None:
            return
        waiting[:] = [entry for entry in waiting if entry[1] is not future]
        if not waiting:
            del self._waiters[key]

    def on_notice(self, notice: ChangeNotice) -> None:
        waiting = self._waiters.get(notice.id)
        if not waiting:
            return
        remaining = []
        for version, future in waiting:
            if notice.version >= version:
                if not future.done():
                    future.set_result(notice.version)
            else:
                remaining.append((version, future))
        if remaining:
            self._waiters[notice.id] = remaining
        else:
            del self._waiters[notice.id]

    def wake_all(self) -> None:
        """After a reconnect notices may have been lost: every waiter re-reads once."""
        for waiting in self._waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_result(0)
        self._waiters.clear()

    async def wait_for(
        self,
        key: str,
        version: int,
        read_version: Callable[[], Awaitable[int]],
        timeout: float,
    ) -> tuple[bool, int]:
        """Until ``read_version()`` reaches ``version`` or ``timeout`` passes.

        Registers before reading, so a notice landing between the read and the wait cannot be
        missed. Returns ``(reached, last_version_read)``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = self.register(key, version)
            try:
                current = await read_version()
                if current >= version:
                    return True, current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False, current
                VERSION_WAITING.inc()
                try:
                    await asyncio.wait_for(asyncio.shield(future), remaining)
                except TimeoutError:
                    return False, await read_version()
                finally:
                    VERSION_WAITING.dec()
            finally:
                self.discard(key, future)
