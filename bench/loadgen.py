"""One closed-loop load generator for everything measured at a fixed concurrency.

``run_closed`` keeps ``concurrency`` workers each awaiting one operation at a time for a warm-up
and then a fixed duration (or a fixed count), recording each operation's latency. The raw
limits (bare FastAPI, MongoDB inserts, Redis GET) and the scenarios use this same machinery and
the same ``HttpClients`` so their ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

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


@dataclass(frozen=True, slots=True)
class Response:
    """What the scenarios read of an HTTP answer (the body is read before the call returns)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class HttpClient:
    """One keep-alive HTTP/1.1 connection (an ``aiohttp`` session limited to one)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None) -> None:
        self._session = aiohttp.ClientSession(
            base_url=base_url or None,
            headers=headers,
            connector=aiohttp.TCPConnector(limit=1),
            timeout=aiohttp.ClientTimeout(total=30.0),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        async with self._session.request(
            method, url, json=json, params=params, headers=headers
        ) as resp:
            return Response(resp.status, await resp.read())

    async def get(self, url: str, **kw: Any) -> Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> Response:
        return await self.request("POST", url, **kw)

    async def patch(self, url: str, **kw: Any) -> Response:
        return await self.request("PATCH", url, **kw)

    async def close(self) -> None:
        await self._session.close()


class HttpClients:
    """The HTTP client machinery of every HTTP figure: one keep-alive HTTP/1.1 connection per
    worker.

    Why ``aiohttp`` and not ``httpx``: measured against the bare FastAPI endpoint on this
    machine, 16 ``httpx.AsyncClient`` workers spent 0.9-1.0 ms of client CPU per request and
    topped out at 950-1,100 req/s, so every HTTP figure was the load generator's limit (the
    server used a fifth of a core); ``aiohttp`` spends 73 us and drives the same server at
    13,100 req/s. On a 2-core machine shared with the system under test, client CPU is also
    taken from the services, so it distorted the latencies as well."""

    def __init__(self, concurrency: int, base_url: str = "", headers: dict[str, str] | None = None):
        self.clients = [HttpClient(base_url, headers) for _ in range(concurrency)]

    def __getitem__(self, worker: int) -> HttpClient:
        return self.clients[worker % len(self.clients)]

    async def __aenter__(self) -> HttpClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.close() for c in self.clients))


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
