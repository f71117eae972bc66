"""One closed-loop load generator for everything measured at a fixed concurrency.

``run_closed`` keeps ``concurrency`` workers each awaiting one operation at a time for a warm-up
and then a fixed duration (or a fixed count), recording each operation's latency. The raw
limits (bare FastAPI, MongoDB inserts, Redis GET) and the scenarios use this same machinery and
the same ``HttpClients`` so their ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import percentiles

Op = Callable[[int, int], Awaitable[bool]]
"""An operation: ``(worker, sequence) -> ok``. It raises or returns False on failure."""


@dataclass
class LoadResult:
    ops: int
    errors: int
    seconds: float
    latencies: list[float] = field(repr=False, default_factory=list)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            **percentiles(self.latencies),
            **({"first_error": self.first_error} if self.first_error else {}),
        }


class HttpClients:
    """The HTTP client machinery of every HTTP figure: one keep-alive HTTP/1.1 connection per
    worker, each in its own ``httpx.AsyncClient``. (One shared client with a pool of N
    connections gets *slower* as N grows — its pool is the bottleneck — so it is not used.)"""

    def __init__(self, concurrency: int, base_url: str = "", headers: dict[str, str] | None = None):
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.clients = [
            httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0, headers=headers)
            for _ in range(concurrency)
        ]

    def __getitem__(self, worker: int) -> httpx.AsyncClient:
        return self.clients[worker % len(self.clients)]

    async def __aenter__(self) -> HttpClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients))


async def run_closed(
    op: Op,
    concurrency: int,
    *,
    duration: float | None = None,
    count: int | None = None,
    warmup: float = 0.0,
) -> LoadResult:
    """Run ``op`` from ``concurrency`` workers; measure after ``warmup`` seconds for
    ``duration`` seconds, or exactly ``count`` operations (then without a warm-up)."""
    if (duration is None) == (count is None):
        raise ValueError("give duration or count")
    result = LoadResult(ops=0, errors=0, seconds=0.0)
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    t_measure = t_start + (warmup if count is None else 0.0)
    t_end = t_measure + (duration or 0.0)
    seq = 0

    async def worker(w: int) -> None:
        nonlocal seq
        while True:
            if count is not None:
                if seq >= count:
                    return
            elif loop.time() >= t_end:
                return
            i = seq
            seq += 1
            t0 = time.perf_counter()
            try:
                ok = await op(w, i)
                error = None if ok else "operation returned False"
            except Exception as exc:  # a failed operation is counted, never fatal
                ok, error = False, f"{type(exc).__name__}: {exc}"
            t1 = time.perf_counter()
            if loop.time() < t_measure:
                continue
            if ok:
                result.ops += 1
                result.latencies.append(t1 - t0)
            else:
                result.errors += 1
                result.first_error = result.first_error or error

    t0 = loop.time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    result.seconds = loop.time() - (t0 if count is not None else t_measure)
    return result


async def run_open(
    op: Callable[[int], Coroutine[Any, Any, None]],
    rate: float,
    duration: float,
    max_in_flight: int = 2000,
) -> int:
    """Start ``op(i)`` at a fixed ``rate`` per second for ``duration`` seconds (open loop), then
    wait for all; returns how many were started. Late starts are not skipped."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    t0 = loop.time()
    n = int(rate * duration)
    for i in range(n):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while len(tasks) >= max_in_flight:  # noqa: ASYNC110 - a bound, rarely reached
            await asyncio.sleep(0.001)
        task = asyncio.create_task(op(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return n
