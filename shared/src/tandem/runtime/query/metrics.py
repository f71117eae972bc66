"""Prometheus collectors of the query service (HTTP request metrics come from
``tandem.observability.PrometheusMiddleware``, WebSocket ones from :mod:`tandem.api.websocket`).

Collectors are process-wide; tests build many apps in one process, so each collector is
created once and reused (``_get_or_create``) instead of failing with "Duplicated timeseries".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

C = TypeVar("C")


def _get_or_create(factory: Callable[..., C], name: str, doc: str, *args: Any, **kw: Any) -> C:
    existing = REGISTRY._names_to_collectors.get(name)
    if existing is not None:
        return existing  # type: ignore[return-value]
    return factory(name, doc, *args, **kw)


CACHE_LOOKUPS = _get_or_create(
    Counter,
    "tandem_query_cache_lookups_total",
    "Read-model lookups by cache level (memory, redis, search) and result (hit, miss)",
    ["level", "result"],
)
REDIS_DEGRADED = _get_or_create(
    Counter,
    "tandem_query_redis_degraded_total",
    "Times Redis failed and reads fell back to MongoDB (breaker opened)",
)
NOTICES = _get_or_create(
    Counter, "tandem_query_change_notices_total", "Change notices received", ["outcome"]
)
SUBSCRIBER_RECONNECTS = _get_or_create(
    Counter,
    "tandem_query_subscriber_reconnects_total",
    "Times the Redis pub/sub subscriber lost its connection and reconnected",
)
VERSION_WAITS = _get_or_create(
    Counter,
    "tandem_query_min_version_total",
    "Reads with min_version by outcome: immediate, fresh (after waiting), stale (timed out)",
    ["outcome"],
)
VERSION_WAIT_SECONDS = _get_or_create(
    Histogram,
    "tandem_query_min_version_wait_seconds",
    "Time spent waiting for the read model to reach min_version",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VERSION_WAITING = _get_or_create(
    Gauge,
    "tandem_query_min_version_waiting",
    "Reads with min_version waiting for a change notice right now",
)
