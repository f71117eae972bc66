"""A real ``python -m projector`` while MongoDB is cut or Redis is killed mid-stream: no event is
dead-lettered for an outage, no offset is committed past an event not applied, and the read
models converge once the server is back. MongoDB is reached through a proxy this test cuts, and
Redis is a redis-server of the test's own, so the shared servers are never stopped."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
import pytest
from projector_helpers import (
    committed_offsets,
    end_offsets,
    env_for,
    random_history,
    start_projector,
    stop,
    wait_until_consumed,
    wait_until_match,
)
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from tandem.runtime.contract import dlq_topic
from tandem.testing.infra import InfraEndpoints
from tandem.testing.proxy import TcpProxy
from tandem_catalog.app import app as catalog

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server on a fixed port that can be killed and started again on it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required"
        dirname = str(self.workdir)
        self.process = subprocess.Popen(  # noqa: ASYNC220 - starts at once, never waited on
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                dirname,
            ],
            stdout=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.ping()
                        return
                    except RedisConnectionError:  # not bound yet
                        await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.kill()


async def _publish(env: Any, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for _ in range(count):
        pid = str(uuid.uuid4())
        await env.publisher.commit(random_history(pid, rng, rng.randint(1, 4)))
        ids.append(pid)
    return ids


async def _metric(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of the projector process's ``/metrics`` (0 when it has none yet)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return float(sample.value)
    return 0.0


async def _until_metric(port: int, name: str, labels: dict[str, str], at_least: float) -> None:
    async with asyncio.timeout(60):
        while True:
            try:
                if await _metric(port, name, labels) >= at_least:
                    return
            except httpx.HTTPError:
                pass  # not serving yet
            await asyncio.sleep(0.1)


async def _dead_letters(env: Any) -> int:
    ends = await end_offsets(env.settings.kafka_bootstrap_servers, dlq_topic(env.topic))
    return sum(ends.values())


async def test_mongodb_cut_mid_stream_commits_nothing_unapplied_and_converges(
    env: Any, infra: InfraEndpoints
) -> None:
    mongo = urlparse(infra.mongo_url)
    proxy = TcpProxy(mongo.hostname or "localhost", mongo.port or 27017, free_port())
    await proxy.start()
    http_port = free_port()
    process = start_projector(
        env_for(
            env,
            mongo_url=f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true",
            http_port=str(http_port),
            batch_max_wait_ms="50",
            infra_backoff_max_s="0.5",
        )
    )
    bootstrap, group = env.settings.kafka_bootstrap_servers, env.settings.group_id
    try:
        await _publish(env, 20, seed=11)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        await wait_until_consumed(bootstrap, group, env.topic)
        before_cut = await committed_offsets(bootstrap, group)
        retries = {"kind": "infrastructure"}
        tried = await _metric(http_port, "tandem_projector_retries_total", retries)

        await proxy.stop()  # MongoDB is gone for the projector, mid-stream
        await _publish(env, 20, seed=12)
        # The projector has fetched the new events and failed to apply them, twice.
        await _until_metric(http_port, "tandem_projector_retries_total", retries, tried + 2)
        assert await committed_offsets(bootstrap, group) == before_cut
        assert process.poll() is None, "the projector must ride out the outage"

        await proxy.start()
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        await wait_until_consumed(bootstrap, group, env.topic)
        assert await _dead_letters(env) == 0
    finally:
        # Off the loop: the proxy runs on it, and the projector's shutdown still talks to
        # MongoDB through it (a blocking wait here would cut it again).
        assert await asyncio.to_thread(stop, process) == 0
        await proxy.stop()


async def test_redis_killed_mid_stream_loses_nothing_and_the_cache_follows_again(
    env: Any, own_redis: RedisServer
) -> None:
    await own_redis.start()
    http_port = free_port()
    process = start_projector(
        env_for(env, redis_url=own_redis.url, http_port=str(http_port), batch_max_wait_ms="50")
    )
    bootstrap, group = env.settings.kafka_bootstrap_servers, env.settings.group_id
    try:
        await _publish(env, 20, seed=21)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        await wait_until_consumed(bootstrap, group, env.topic)

        own_redis.kill()  # the cache and the notices are gone, mid-stream
        await _publish(env, 20, seed=22)
        # Redis is an optimisation: the read models still converge, and everything is
        # consumed, while it is down.
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        await wait_until_consumed(bootstrap, group, env.topic)
        assert await _metric(http_port, "tandem_projector_redis_failures_total") >= 1

        await own_redis.start()
        after = await _publish(env, 10, seed=23)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        await wait_until_consumed(bootstrap, group, env.topic)
        redis = Redis.from_url(own_redis.url)
        try:
            for pid in after:
                doc = await env.read_db["products"].find_one({"_id": pid})
                raw = await redis.get(catalog.read_model("products").cache_key(pid))
                assert raw is not None, f"{pid} not cached after Redis came back"
                assert orjson.loads(raw)["version"] == doc["version"]
        finally:
            await redis.aclose()
        assert await _dead_letters(env) == 0
        assert process.poll() is None
    finally:
        assert stop(process) == 0
