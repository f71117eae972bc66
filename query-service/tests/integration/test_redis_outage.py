"""Redis is an optimisation: with it gone, reads are still answered from MongoDB."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from tandem.runtime.query.testing import running
from tandem.testing.system import free_port
from tandem_catalog.testing import product_doc

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, so stopping it disturbs nobody else."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required"
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            yield f"redis://127.0.0.1:{port}/0", process
        finally:
            process.kill()
            process.wait()


def _degraded() -> float:
    return REGISTRY.get_sample_value("tandem_query_redis_degraded_total") or 0.0


async def test_reads_stay_200_when_redis_stops(
    make_settings: Any,
    mongo_client: AsyncMongoClient[Any],
    own_redis: tuple[str, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_url, redis_process = own_redis
    await asyncio.sleep(0.3)  # let redis-server bind
    settings = make_settings(redis_url=redis_url, lru_size=1)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_many([product_doc("a", 1), product_doc("b", 1), product_doc("c", 2)])
    try:
        async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/products/a")).status_code == 200
            before = _degraded()
            redis_process.kill()
            redis_process.wait()
            for product_id in ("a", "b", "c", "a"):
                response = await http.get(f"/api/products/{product_id}")
                assert response.status_code == 200, response.text
                assert response.json()["id"] == product_id
            search = await http.get("/api/products/search")
            assert search.status_code == 200
            assert search.json()["total"] == 3
            fresh = await http.get("/api/products/c", params={"min_version": 2})
            assert fresh.status_code == 200
            assert _degraded() == before + 1  # one breaker opening, not one per request
            assert "serving reads from MongoDB" in caplog.text
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)
