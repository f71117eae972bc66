"""Real ``python -m query_service`` processes: fan-out across instances, operations routes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tandem.auth import issue_token
from tandem.runtime.query.settings import QueryServiceSettings
from tandem.testing.system import free_port
from tandem_catalog.testing import PRODUCTS, notice
from websockets.asyncio.client import connect

pytestmark = pytest.mark.integration


def service_env(settings: QueryServiceSettings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "TANDEM_ENVIRONMENT": settings.environment,
        "TANDEM_MONGO_URL": settings.mongo_url,
        "TANDEM_REDIS_URL": settings.redis_url,
        "TANDEM_MONGO_READ_DB": settings.mongo_read_db,
        "TANDEM_HTTP_PORT": str(port),
        "TANDEM_LOG_LEVEL": "WARNING",
    }


@asynccontextmanager
async def query_service_process(settings: QueryServiceSettings) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "query_service", env=service_env(settings, port)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(150):
                assert process.returncode is None, "query service exited"
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("query service did not become ready")
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_two_processes_behind_one_redis_both_push_a_change_published_once(
    make_settings: Callable[..., QueryServiceSettings], redis_client: Redis
) -> None:
    settings = make_settings()
    token = issue_token(settings, "reader", ["products:read"], 60)
    async with query_service_process(settings) as first, query_service_process(settings) as second:
        clients = []
        for base in (first, second):
            ws = await connect(base.replace("http", "ws") + "/ws/products")
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
            clients.append(ws)
        receivers = await redis_client.publish(PRODUCTS.channel, notice("shared", 7, price=1.5))
        assert receivers == 2  # one subscriber connection per process
        for ws in clients:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert (message["type"], message["id"], message["version"]) == ("change", "shared", 7)
            await ws.close()

        async with httpx.AsyncClient(base_url=first) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            metrics = (await http.get("/metrics")).text
            for name in (
                "tandem_http_requests_total",
                "tandem_http_request_seconds_bucket",
                "tandem_query_ws_clients",
                "tandem_query_ws_messages_sent_total",
                "tandem_query_cache_lookups_total",
            ):
                assert name in metrics, name
            assert (await http.post("/dev/token")).status_code == 403  # not development


async def test_development_token_endpoint(make_settings: Any) -> None:
    from tandem.runtime.query.testing import running

    settings = make_settings(environment="development")
    async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/dev/token", json={"scopes": ["products:read", "admin"]})
        assert response.status_code == 200
        assert response.json()["scopes"] == ["products:read"]
        config = (await http.get("/config.json")).json()
        assert config["development"] is True
        assert "ProductCreated" in config["event_types"]
        page = await http.get("/")
        assert page.status_code == 200
        assert "Tandem live catalog" in page.text
        assert (await http.get("/static/app.js")).status_code == 200
