"""Does the MongoDB-wire server behave like MongoDB where Tandem's correctness depends on it?

Concurrency and durability, not features: the projector's conditional writes are a
compare-and-set on ``{_id, version}`` that must be exact when two processes touch one aggregate
(rebalance overlap, a rebuild beside the live projection); the event store's optimistic
concurrency is a duplicate key (code 11000) on ``(aggregate id, version)``; an acknowledged
commit must survive the server being killed (the e2e faults SIGKILL it).

The first three run against whatever server the tests use (``TANDEM_MONGO_URL``); the last
starts a server of its own through ``deploy/local/stack.py`` (whatever it starts by default),
so killing it never disturbs the other tests. The old FerretDB v1.24.2 build failed the two
races (docs/local-servers.md has the figures).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[1] / "local" / "stack.py"
WRITERS = 4
VERSIONS = 200
INCREMENTS = 100


async def test_a_compare_and_set_race_acknowledges_each_version_exactly_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Four writers race ``{_id, version: v} -> {$set: {version: v + 1}}`` for v = 0..199,
    each reading the current version and trying to move it on: MongoDB acknowledges exactly
    one writer per version, so the acknowledgements are 0..199 once each. Three rounds, since
    a racy server can get one round right by luck (FerretDB did in one run of six)."""
    coll = mongo_db["cas"]
    rounds: list[tuple[int, int, list[int]]] = []
    for key in ("k0", "k1", "k2"):
        await coll.insert_one({"_id": key, "version": 0})
        acked: list[int] = []

        async def writer(key: str = key, acked: list[int] = acked) -> None:
            while True:
                doc = await coll.find_one({"_id": key})
                assert doc is not None
                v = int(doc["version"])
                if v >= VERSIONS:
                    return
                result = await coll.update_one(
                    {"_id": key, "version": v}, {"$set": {"version": v + 1}}
                )
                if result.modified_count == 1:
                    acked.append(v)

        async with asyncio.timeout(120):
            await asyncio.gather(*(writer() for _ in range(WRITERS)))
        doc = await coll.find_one({"_id": key})
        assert doc is not None
        rounds.append((len(acked), int(doc["version"]), sorted(acked)))
    assert [(n, final) for n, final, _ in rounds] == [(VERSIONS, VERSIONS)] * 3, (
        "acknowledgements and final version per round for "
        f"{VERSIONS} versions: {[(n, final) for n, final, _ in rounds]}"
    )
    assert all(acked == list(range(VERSIONS)) for _, _, acked in rounds)


async def test_concurrent_increments_are_exact(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    coll = mongo_db["counter"]
    await coll.insert_one({"_id": "n", "n": 0})

    async def writer() -> None:
        for _ in range(INCREMENTS):
            await coll.update_one({"_id": "n"}, {"$inc": {"n": 1}})

    async with asyncio.timeout(120):
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
    doc = await coll.find_one({"_id": "n"})
    assert doc is not None
    assert doc["n"] == WRITERS * INCREMENTS


async def test_a_duplicate_key_is_error_11000(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    """On ``_id`` and on a unique compound index (the event store's ``(aggregate_id,
    version)``), from ``insert_one`` and from an unordered ``insert_many``."""
    coll = mongo_db["commits"]
    await coll.create_index([("aggregate_id", 1), ("version", 1)], unique=True)
    await coll.insert_one({"_id": "a:1", "aggregate_id": "a", "version": 1})
    with pytest.raises(DuplicateKeyError) as by_id:
        await coll.insert_one({"_id": "a:1", "aggregate_id": "x", "version": 9})
    assert by_id.value.code == 11000
    with pytest.raises(DuplicateKeyError) as by_index:
        await coll.insert_one({"_id": "other", "aggregate_id": "a", "version": 1})
    assert by_index.value.code == 11000
    with pytest.raises(BulkWriteError) as bulk:
        await coll.insert_many(
            [
                {"_id": "a:2", "aggregate_id": "a", "version": 2},
                {"_id": "dup", "aggregate_id": "a", "version": 2},
                {"_id": "a:3", "aggregate_id": "a", "version": 3},
            ],
            ordered=False,
        )
    errors = bulk.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(1, 11000)]
    assert await coll.count_documents({"aggregate_id": "a"}) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stack(tmp_path: Path, port: int, *args: str) -> None:
    env = {
        **os.environ,
        "TANDEM_STACK_DIR": str(tmp_path / "stack"),
        "TANDEM_MONGO_PORT": str(port),
        "TANDEM_MONGO_URL": "",  # the stack's own server, never the session's
    }
    proc = subprocess.run(
        [sys.executable, str(STACK), *args, "mongo"],
        capture_output=True,
        text=True,
        timeout=900,  # a first `up` on a fresh machine builds the server
        check=False,
        env=env,
    )
    assert proc.returncode == 0, f"stack.py {' '.join(args)} mongo:\n{proc.stdout}{proc.stderr}"


def test_acknowledged_writes_survive_a_sigkill_under_load(tmp_path: Path) -> None:
    """Four threads insert as fast as they can; the server is SIGKILLed in the middle and
    started again on the same data: every insert that was acknowledged is there."""
    port = _free_port()
    url = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000"
    _stack(tmp_path, port, "up")
    try:
        acked: list[list[int]] = [[] for _ in range(WRITERS)]
        stop = threading.Event()

        def writer(w: int) -> None:
            with MongoClient(url, retryWrites=False) as client:
                coll = client["durability"]["docs"]
                i = 0
                while not stop.is_set():
                    doc_id = w * 1_000_000 + i
                    try:
                        coll.insert_one({"_id": doc_id, "payload": "x" * 200})
                    except PyMongoError:
                        return  # the server is gone: this insert was never acknowledged
                    acked[w].append(doc_id)
                    i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        _stack(tmp_path, port, "kill")
        stop.set()
        for t in threads:
            t.join(timeout=30)
        ids = [i for per_writer in acked for i in per_writer]
        assert len(ids) > 200, f"only {len(ids)} inserts before the kill: no load to speak of"
        _stack(tmp_path, port, "up")
        with MongoClient(url) as client:
            coll = client["durability"]["docs"]
            found = {d["_id"] for d in coll.find({"_id": {"$in": ids}}, {"_id": 1})}
        lost = len(ids) - len(found)
        assert lost == 0, f"{lost} of {len(ids)} acknowledged inserts lost"
    finally:
        _stack(tmp_path, port, "down")
