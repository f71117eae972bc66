"""Read-your-writes: ``min_version`` waits for the projector's notice, bounded by wait_ms."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.runtime.query.testing import running
from tandem_catalog.testing import PRODUCTS, notice, product_doc

pytestmark = pytest.mark.integration


def waits() -> dict[str, float]:
    """The wait-for-version outcome counters (this process's registry: the app runs in it)."""
    return {
        outcome: REGISTRY.get_sample_value("tandem_query_min_version_total", {"outcome": outcome})
        or 0.0
        for outcome in ("immediate", "fresh", "stale")
    } | {"waited": REGISTRY.get_sample_value("tandem_query_min_version_wait_seconds_count") or 0.0}


def waiting() -> float:
    return REGISTRY.get_sample_value("tandem_query_min_version_waiting") or 0.0


async def until_waiting(count: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if waiting() >= count:
                return
            await asyncio.sleep(0.01)


def moved(before: dict[str, float]) -> dict[str, float]:
    return {key: value - before[key] for key, value in waits().items()}


async def test_fresh_data_when_the_projector_catches_up_within_the_bound(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings(wait_ms_max=60000)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p", 1, price=1.0))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/products/p")).json()["version"] == 1  # now cached
            before = waits()
            pending = asyncio.create_task(
                http.get("/api/products/p", params={"min_version": 2, "wait_ms": 60000})
            )
            await until_waiting(1)  # it read v1 and now waits for a notice
            assert not pending.done()
            # What the projector does: write the read model, then publish the notice.
            await db.products.replace_one({"_id": "p"}, product_doc("p", 2, price=2.0))
            await redis_client.publish(PRODUCTS.channel, notice("p", 2, price=2.0))
            # Woken by the notice: the 60 s deadline would have answered 409, not 200.
            response = await asyncio.wait_for(pending, 30)
            assert response.status_code == 200
            assert response.json()["price"] == 2.0
            assert response.headers["etag"] == '"2"'
            assert waiting() == 0

            # The header form, already satisfied: answered at once.
            header = await http.get("/api/products/p", headers={"X-Min-Version": "2"})
            assert header.status_code == 200
            assert header.json()["version"] == 2
            assert moved(before) == {"immediate": 1, "fresh": 1, "stale": 0, "waited": 1}
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_documented_status_when_the_read_side_stays_behind(
    make_settings: Any, mongo_client: AsyncMongoClient[Any]
) -> None:
    settings = make_settings(wait_ms_default=200, wait_ms_max=400)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_one(product_doc("p", 3))
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            before = waits()
            response = await http.get(
                "/api/products/p", headers={"X-Min-Version": "5"}, params={"wait_ms": 60000}
            )
            assert response.status_code == 409
            assert response.headers["retry-after"] == "1"
            assert response.headers["x-read-model-version"] == "3"
            error = response.json()["error"]
            assert error["code"] == "stale_read_model"
            # Clamped to wait_ms_max: the answer says it waited 400 ms, not the 60 s asked for.
            assert error["details"] == {
                "id": "p",
                "min_version": 5,
                "current_version": 3,
                "waited_ms": 400,
            }

            unknown = await http.get("/api/products/new", params={"min_version": 1})
            assert unknown.status_code == 409
            assert unknown.json()["error"]["details"]["current_version"] == 0
            assert moved(before) == {"immediate": 0, "fresh": 0, "stale": 2, "waited": 2}

            invalid = await http.get("/api/products/p", params={"min_version": 0})
            assert invalid.status_code == 422
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)
