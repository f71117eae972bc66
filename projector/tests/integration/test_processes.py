"""Real ``python -m projector`` processes: SIGKILL and restart, two members of one group,
and a rebuild while events keep arriving."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest
from projector_helpers import (
    PRODUCTS,
    env_for,
    random_history,
    start_projector,
    stop,
    wait_until_match,
)
from tandem.runtime.projector.store import Pointer

pytestmark = pytest.mark.integration


def _env(env: Any, **extra: str) -> dict[str, str]:
    return env_for(env, batch_max_wait_ms="50", **extra)


async def _publish_histories(env: Any, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        await env.publisher.commit(random_history(str(uuid.uuid4()), rng, rng.randint(1, 5)))


async def _wait_some_products(env: Any, minimum: int = 1, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await env.read_db["products"].count_documents({}) < minimum:
        assert loop.time() < deadline, "projector applied nothing"
        await asyncio.sleep(0.05)


async def test_sigkill_mid_stream_then_restart_loses_nothing(env: Any) -> None:
    await _publish_histories(env, 300, seed=1)
    first = start_projector(_env(env, batch_size="20"))
    try:
        await _wait_some_products(env, 20)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert await env.read_db["products"].count_documents({}) < 300, "killed too late"
    second = start_projector(_env(env))
    try:
        await _publish_histories(env, 20, seed=2)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
    finally:
        assert stop(second) == 0


async def test_two_members_one_stops_the_other_takes_over(env: Any) -> None:
    one = start_projector(_env(env, batch_size="20"))
    two = start_projector(_env(env, batch_size="20"))
    try:
        await asyncio.sleep(3)  # both joined the group
        await _publish_histories(env, 200, seed=3)
        await _wait_some_products(env, 10)
        assert stop(one) == 0  # SIGTERM: drains, commits, leaves the group
        await _publish_histories(env, 50, seed=4)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
    finally:
        stop(one)
        assert stop(two) == 0


async def test_rebuild_while_events_arrive_ends_equal_to_live(env: Any) -> None:
    await _publish_histories(env, 200, seed=5)
    live = start_projector(_env(env))
    try:
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        rebuild = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "projector",
            "rebuild",
            "products",
            env=_env(env, rebuild_page_size="50", rebuild_settle_s="1.5"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rng = random.Random(6)
        while rebuild.returncode is None:
            await env.publisher.commit(random_history(str(uuid.uuid4()), rng, 3))
            await asyncio.sleep(0.02)
        assert await rebuild.wait() == 0
        await _publish_histories(env, 20, seed=7)
        pointer = await Pointer(env.read_db, PRODUCTS.name).read()
        assert pointer["active"] != "products"
        assert "next" not in pointer
        assert "products" not in await env.read_db.list_collection_names()
        await wait_until_match(env.read_db, env.write_db, timeout=120)
    finally:
        assert stop(live) == 0
