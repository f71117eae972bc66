"""Fixtures for the query service's tests (helpers live in ``tandem.runtime.query.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tandem.runtime.query.bootstrap import QueryServiceSettings
from tandem.testing.infra import InfraEndpoints


@pytest.fixture
def make_settings(infra: InfraEndpoints, unique_name: str) -> Callable[..., QueryServiceSettings]:
    """Settings isolated per test: own read database, channel and cache prefix."""

    def make(**overrides: Any) -> QueryServiceSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "mongo_url": infra.mongo_url,
            "redis_url": infra.redis_url,
            "mongo_read_db": f"qs_{unique_name.replace('-', '_')}",
            "changes_channel": f"tandem.changes.{unique_name}",
            "cache_prefix": f"{unique_name}:products:",
            "http_port": 0,
        }
        values.update(overrides)
        return QueryServiceSettings(**values)

    return make
