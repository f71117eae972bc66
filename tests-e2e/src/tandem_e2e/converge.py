"""Wait for a condition by polling with a deadline: never a bare ``sleep`` in a scenario."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ConvergenceTimeout(AssertionError):
    """The condition did not hold before the deadline; the message carries the last state."""


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], Awaitable[str]] | None = None,
) -> tuple[T, float]:
    """Poll ``check`` until it returns something truthy; returns it and the seconds it took.

    ``check`` may raise while the system is still settling (a server restarting); the last
    error is reported if the deadline passes.
    """
    start = time.monotonic()
    deadline = start + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = await check()
        except Exception as exc:  # the system is allowed to be unreachable while settling
            last_error = exc
            result = None
        if result:
            return result, time.monotonic() - start
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            if describe is not None:
                detail += f"; state: {await describe()}"
            raise ConvergenceTimeout(f"{what} not reached within {timeout:.0f}s{detail}")
        await asyncio.sleep(interval)


def wait_sync(check: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
