"""What the orders integration tests share besides fixtures: metrics, waits, WebSocket frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tandem.testing.system import RunningSystem, ServiceProcess


def catalog_projector(system: RunningSystem) -> ServiceProcess:
    return system.projectors[0]


def orders_projector(system: RunningSystem) -> ServiceProcess:
    return system.projectors[1]


async def metric(http: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` at ``url``/metrics whose labels include ``labels``."""
    text = (await http.get(f"{url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, tries: int = 600) -> None:
    """Until ``check()`` holds (outcome, not time: the bound only turns a hang into a failure)."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def next_change(ws: Any) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == "change":
            return frame


async def subscribed(ws: Any, token: str) -> None:
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == "subscribed":
            return
