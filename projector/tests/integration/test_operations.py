"""``/healthz``, ``/readyz`` and ``/metrics`` of a real ``python -m projector`` process, with
counters that move by exactly what was fed to the topic."""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from projector_helpers import (
    assert_read_models_match,
    env_for,
    random_history,
    start_projector,
    stop,
    wait_until_match,
)
from prometheus_client.parser import text_string_to_metric_families
from tandem_catalog.events import ProductCreated, ProductPriceChanged

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
EVENTS = "tandem_projector_events_total"
LAG = "tandem_projector_lag"
BATCH_SECONDS = "tandem_projector_batch_apply_seconds"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _lags(samples: Samples, topic: str) -> dict[int, float]:
    return {
        int(dict(labels)["partition"]): value
        for (name, labels), value in samples.items()
        if name == LAG and dict(labels).get("topic") == topic
    }


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_health_readiness_and_metrics_follow_what_was_fed(env: Any) -> None:
    rng = random.Random(11)
    for _ in range(100):  # published before the projector starts: it has to catch up
        await env.publisher.commit(random_history(str(uuid.uuid4()), rng, rng.randint(1, 4)))
    published = list(env.publisher.published)
    port = _free_port()
    process = start_projector(
        env_for(
            env,
            batch_max_wait_ms="50",
            batch_size="5",  # many batches, so a positive lag is visible while catching up
            http_port=str(port),
        )
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def alive() -> bool:
                assert process.poll() is None, "the projector exited"
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until(alive, timeout=30)
            assert (await http.get("/healthz")).json() == {"status": "ok"}

            # Catching up: sample the lag until the read models equal the fold.
            max_lag = 0.0
            ready: dict[str, Any] = {}
            deadline = time.monotonic() + 120
            while True:
                samples = await _scrape(http)
                max_lag = max([max_lag, *_lags(samples, env.topic).values()])
                if not ready:
                    answer = await http.get("/readyz")
                    if answer.status_code == 200:
                        ready = answer.json()
                try:
                    await assert_read_models_match(env.read_db, env.write_db)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
            assert ready == {
                "status": "ready",
                "checks": {"mongo": "ok", "redis": "ok", "kafka": "ok"},
                "degraded": {},
            }
            readyz = await http.get("/readyz")  # assigned and applying: still ready
            assert (readyz.status_code, readyz.json()["status"]) == (200, "ready")
            assert max_lag > 0, "never saw the projector behind the high watermark"

            async def counted(outcome: str, expected: float) -> bool:
                return _value(await _scrape(http), EVENTS, outcome=outcome) == expected

            await _until(lambda: counted("applied", len(published)))
            base = await _scrape(http)
            assert _value(base, EVENTS, outcome="duplicate") == 0
            assert _value(base, EVENTS, outcome="healed") == 0
            assert _value(base, EVENTS, outcome="dead_lettered") == 0
            # Every partition (4, by the fixture) was fed and is caught up.
            assert _lags(base, env.topic) == {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}
            batches = _value(base, f"{BATCH_SECONDS}_count")
            assert batches >= len(published) / 5
            assert _value(base, f"{BATCH_SECONDS}_sum") > 0
            assert _value(base, f"{BATCH_SECONDS}_bucket", le="+Inf") == batches

            # Duplicates: 7 events already applied are delivered again.
            await env.publisher.send(rng.sample(published, 7))
            await _until(lambda: counted("duplicate", 7))

            # A gap: versions 1 and 3 arrive, 2 is healed from the event store.
            pid = str(uuid.uuid4())
            created = ProductCreated(
                aggregate_id=pid, name="g", description="", price=Decimal(1), category="books"
            )
            stored = await env.publisher.commit([created], publish=False)
            for price in (2, 3):
                stored += await env.publisher.commit(
                    [
                        ProductPriceChanged(
                            aggregate_id=pid, old_price=Decimal(1), price=Decimal(price)
                        )
                    ],
                    publish=False,
                )
            await env.publisher.send([stored[0], stored[2]])
            await _until(lambda: counted("healed", 1))

            # A poison message is dead-lettered.
            await env.publisher.producer.send_and_wait(env.topic, b"{not json", key=b"x")
            await _until(lambda: counted("dead_lettered", 1))

            await wait_until_match(env.read_db, env.write_db)
            after = await _scrape(http)
            assert _value(after, EVENTS, outcome="applied") == len(published) + 2
            assert _value(after, EVENTS, outcome="duplicate") == 7
            assert _value(after, EVENTS, outcome="healed") == 1
            assert _value(after, EVENTS, outcome="dead_lettered") == 1
            assert _value(after, f"{BATCH_SECONDS}_count") > batches
            assert set(_lags(after, env.topic).values()) == {0.0}
    finally:
        assert stop(process) == 0
