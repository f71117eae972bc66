"""``python -m projector rebuild products`` killed part-way, then run again: one switch, to a
complete collection, and no collection left behind, whichever step the kill came in."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from projector_helpers import PRODUCTS, env_for, random_history, wait_until_match
from redis.asyncio import Redis
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.projector.bootstrap import clients
from tandem.runtime.projector.rebuild import READ_MODEL_SWITCHED, Rebuilder
from tandem.runtime.projector.store import Pointer

pytestmark = pytest.mark.integration

Phase = Callable[[dict[str, Any]], bool]
PHASES: dict[str, Phase] = {
    # replaying the event store into the new collection (position recorded, not followed yet)
    "replaying": lambda p: bool(p.get("building")) and p.get("position", 0) > 0 and "next" not in p,
    # live projectors write both collections; the catch-up has not switched yet
    "following": lambda p: bool(p.get("next")),
    # switched, the old collection not dropped yet
    "switched": lambda p: bool(p.get("previous")),
}


def _env(env: Any, **extra: str) -> dict[str, str]:
    return env_for(env, rebuild_page_size="5", rebuild_settle_s="2", **extra)


def _rebuild(env: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "projector", "rebuild", "products"],
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


async def _publish_histories(env: Any, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        await env.publisher.commit(random_history(str(uuid.uuid4()), rng, rng.randint(1, 4)))


async def _products_collections(env: Any) -> list[str]:
    names = await env.read_db.list_collection_names()
    return sorted(n for n in names if n == PRODUCTS.name or n.startswith("products_"))


class _Watch:
    """Every distinct ``active`` the pointer shows, in order, polled in the background."""

    def __init__(self, env: Any) -> None:
        self.pointer = Pointer(env.read_db, PRODUCTS.name)
        self.actives: list[str] = []
        self.last: dict[str, Any] = {}
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.last = await self.pointer.read()
            active = str(self.last.get("active"))
            if not self.actives or self.actives[-1] != active:
                self.actives.append(active)
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.mark.parametrize("phase", list(PHASES))
async def test_a_rebuild_killed_part_way_and_rerun_switches_once(
    env: Any, projector: Any, phase: str
) -> None:
    await _publish_histories(env, 300, seed=21)
    async with projector(env.settings):
        await wait_until_match(env.read_db, env.write_db, timeout=120)
        watch = _Watch(env)
        try:
            first = _rebuild(env)
            try:
                deadline = time.monotonic() + 120
                while not PHASES[phase](watch.last):
                    assert first.poll() is None, "the rebuild ended before it could be killed"
                    assert time.monotonic() < deadline, f"the rebuild never reached {phase}"
                    await asyncio.sleep(0.005)
                first.send_signal(signal.SIGKILL)
                assert first.wait(10) == -signal.SIGKILL
            finally:
                if first.poll() is None:
                    first.kill()
            at_kill = await Pointer(env.read_db, PRODUCTS.name).read()
            assert PHASES[phase](at_kill)
            target = str(at_kill["active"] if phase == "switched" else at_kill["building"])

            await _publish_histories(env, 20, seed=22)  # the live projector keeps going
            second = _rebuild(env)
            out, _ = await asyncio.to_thread(second.communicate, timeout=120)
            assert second.returncode == 0
            assert out.decode().strip().splitlines()[-1] == f"products now read from {target}"
        finally:
            await watch.stop()
        await _publish_histories(env, 20, seed=23)
        await wait_until_match(env.read_db, env.write_db, timeout=120)
    assert watch.actives == [PRODUCTS.name, target]  # one switch, to the first's target
    assert await Pointer(env.read_db, PRODUCTS.name).read() == {
        "_id": PRODUCTS.name,
        "active": target,
    }
    assert await _products_collections(env) == [target]  # no orphan, the old one dropped


async def test_a_rebuild_that_died_after_dropping_the_old_collection_is_finished(
    env: Any, projector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _publish_histories(env, 30, seed=24)
    update = Pointer.update

    async def dies_before_forgetting_previous(
        self: Pointer, fields: dict[str, Any], unset: Any = ()
    ) -> None:
        if "previous" in unset:
            raise ConnectionError("killed")
        await update(self, fields, unset)

    settings = env.settings.model_copy(update={"rebuild_settle_s": 0.2})
    async with projector(settings), clients(settings) as c:
        await wait_until_match(env.read_db, env.write_db)

        def rebuilder() -> Rebuilder:
            return c.rebuilder(PRODUCTS.name, settle_s=0.2)

        monkeypatch.setattr(Pointer, "update", dies_before_forgetting_previous)
        with pytest.raises(ConnectionError):
            await rebuilder().run()
        monkeypatch.setattr(Pointer, "update", update)
        pointer = await Pointer(env.read_db, PRODUCTS.name).read()
        target = str(pointer["active"])
        assert pointer["previous"] == PRODUCTS.name
        assert await _products_collections(env) == [target]  # dropped, but still named

        assert await rebuilder().run() == target
        await _publish_histories(env, 5, seed=25)
        await wait_until_match(env.read_db, env.write_db)
    assert await Pointer(env.read_db, PRODUCTS.name).read() == {
        "_id": PRODUCTS.name,
        "active": target,
    }
    assert await _products_collections(env) == [target]


async def test_the_switch_is_announced_before_the_old_collection_is_dropped(
    env: Any, projector: Any, redis_client: Redis
) -> None:
    await _publish_histories(env, 30, seed=26)
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(PRODUCTS.channel)
    try:
        async with projector(env.settings):
            await wait_until_match(env.read_db, env.write_db)
            rebuild = _rebuild(env)
            try:
                notice = None
                deadline = time.monotonic() + 120
                while notice is None:
                    assert time.monotonic() < deadline, "no ReadModelSwitched notice"
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is None:
                        continue
                    candidate = ChangeNotice.model_validate_json(message["data"])
                    if candidate.event_type == READ_MODEL_SWITCHED:
                        notice = candidate
                # Heard at once: the pointer already names the new collection, and the old one
                # is still there for readers that have not re-read the pointer yet.
                pointer = await Pointer(env.read_db, PRODUCTS.name).read()
                assert PRODUCTS.name in await _products_collections(env)
                out, _ = await asyncio.to_thread(rebuild.communicate, timeout=120)
                assert rebuild.returncode == 0
            finally:
                if rebuild.poll() is None:
                    rebuild.kill()
            target = str(pointer["active"])
            assert target != PRODUCTS.name
            assert out.decode().strip().splitlines()[-1] == f"products now read from {target}"
            assert notice.id == PRODUCTS.name  # the logical name, what readers look up
            assert notice.read_model == PRODUCTS.name
            assert notice.event_type == "ReadModelSwitched"  # what query-service listens for
            assert notice.changed_fields == {"active": target}
            assert notice.version == 0
            await _publish_histories(env, 5, seed=27)
            await wait_until_match(env.read_db, env.write_db)
        assert await _products_collections(env) == [target]
    finally:
        await pubsub.aclose()
