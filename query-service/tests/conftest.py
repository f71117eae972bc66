"""Fixtures for the query service's tests (helpers live in ``tandem.runtime.query.testing``
and, for catalog documents, ``tandem_catalog.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from tandem.runtime.query.settings import QueryServiceSettings
from tandem.testing.infra import InfraEndpoints
from tandem_catalog.app import app


@pytest.fixture
async def fresh_caches(redis_client: Redis) -> None:
    """Cache keys and channels come from the declaration, so tests share them: each test
    starts without the catalog's cached documents (ids like ``p1`` repeat across tests)."""
    for spec in app.read_models:
        keys = [key async for key in redis_client.scan_iter(match=f"{spec.cache_prefix}*")]
        if keys:
            await redis_client.delete(*keys)


@pytest.fixture
def make_settings(
    infra: InfraEndpoints, unique_name: str, fresh_caches: None
) -> Callable[..., QueryServiceSettings]:
    """Settings isolated per test: own read database, no cached documents."""

    def make(**overrides: Any) -> QueryServiceSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "mongo_url": infra.mongo_url,
            "redis_url": infra.redis_url,
            "mongo_read_db": f"qs_{unique_name.replace('-', '_')}",
            "http_port": 0,
        }
        values.update(overrides)
        return QueryServiceSettings(**values)

    return make
