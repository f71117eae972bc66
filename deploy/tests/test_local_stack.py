"""The local stack CLI against real processes: failures name the server and its log,
``up`` is idempotent, ``down`` stops only what it started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[1] / "local" / "stack.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stack(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STACK), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TANDEM_STACK_DIR": str(tmp_path / "stack"), **env},
    )


@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is installed by make"
)
def test_up_is_idempotent_and_down_stops_only_its_own_process(tmp_path: Path) -> None:
    port = str(_free_port())
    first = _stack(tmp_path, "up", "redis", TANDEM_REDIS_PORT=port)
    assert first.returncode == 0, first.stderr
    pid_file = tmp_path / "stack" / "redis.pid"
    pid = pid_file.read_text().split()[0]
    again = _stack(tmp_path, "up", "redis", TANDEM_REDIS_PORT=port)
    assert again.returncode == 0
    assert pid_file.read_text().split()[0] == pid  # reused, not restarted
    status = _stack(tmp_path, "status", "redis", TANDEM_REDIS_PORT=port)
    assert "ready" in status.stdout
    assert status.returncode == 0

    # A recycled pid file pointing at a process we did not start is left alone.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        down = _stack(tmp_path, "down", "redis", TANDEM_REDIS_PORT=port)
        assert down.returncode == 0
        assert not pid_file.exists()
        pid_file.write_text(f"{stranger.pid} redis-server\n")
        _stack(tmp_path, "down", "redis", TANDEM_REDIS_PORT=port)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    stopped = _stack(tmp_path, "status", "redis", TANDEM_REDIS_PORT=port)
    assert "stopped" in stopped.stdout
    assert stopped.returncode == 1


def test_a_server_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    # redis-server refuses a port above 65535 and exits at once.
    result = _stack(tmp_path, "up", "redis", TANDEM_REDIS_PORT="70000")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("stack: error: redis:")
    assert str(tmp_path / "stack" / "redis.log") in lines[0]


def test_unknown_server_name_is_a_clear_error(tmp_path: Path) -> None:
    result = _stack(tmp_path, "up", "postgres")
    assert result.returncode == 1
    assert "unknown server" in result.stderr


needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="FerretDB is built with Go")


@contextmanager
def own_ferretdb(tmp_path: Path) -> Iterator[tuple[str, Callable[..., Any]]]:
    """A FerretDB of this test's own (its data under ``tmp_path``): its URL, and ``stack(...)``
    to run more stack commands on it. Stopped at the end."""
    env = {
        "TANDEM_MONGO_PORT": str(_free_port()),
        "TANDEM_MONGO_URL": "",
        "TANDEM_USE_FERRETDB": "1",
    }

    def stack(*args: str) -> subprocess.CompletedProcess[str]:
        return _stack(tmp_path, *args, **env)

    up = stack("up", "mongo")
    assert up.returncode == 0, up.stderr
    try:
        yield (
            f"mongodb://127.0.0.1:{env['TANDEM_MONGO_PORT']}/?serverSelectionTimeoutMS=20000",
            stack,
        )
    finally:
        stack("down", "mongo")


@needs_go
def test_ferretdb_keeps_every_acknowledged_write_when_killed(tmp_path: Path) -> None:
    """``synchronous(normal)`` drops the fsync per commit, not durability against a crash of
    the server: SIGKILL right after the last acknowledgement loses nothing."""
    from pymongo import MongoClient

    with own_ferretdb(tmp_path) as (url, stack):
        with MongoClient(url) as client:
            docs = client["durability"]["docs"]
            for i in range(300):
                docs.insert_one({"_id": i, "n": i})
            docs.update_many({"_id": {"$lt": 100}}, {"$set": {"n": -1}})
        killed = stack("kill", "mongo")
        assert killed.returncode == 0, killed.stderr
        again = stack("up", "mongo")
        assert again.returncode == 0, again.stderr
        with MongoClient(url) as client:
            docs = client["durability"]["docs"]
            assert docs.count_documents({}) == 300
            assert docs.count_documents({"n": -1}) == 100


def test_an_unknown_sqlite_synchronous_mode_is_a_clear_error(tmp_path: Path) -> None:
    env = {"TANDEM_MONGO_URL": "", "TANDEM_USE_FERRETDB": "1", "TANDEM_FERRETDB_SYNCHRONOUS": "off"}
    result = _stack(tmp_path, "up", "mongo", TANDEM_MONGO_PORT=str(_free_port()), **env)
    assert result.returncode == 1
    assert "TANDEM_FERRETDB_SYNCHRONOUS must be normal, full or extra" in result.stderr


@needs_go
def test_ferretdb_wal_stays_bounded_under_steady_updates(tmp_path: Path) -> None:
    """Stock FerretDB commits each update while that statement's read is still open, which
    pins SQLite's WAL: it grew by ~8 KB per update (117 MB in 8 s). Patched, automatic
    checkpoints complete and the WAL restarts at its 1,000-page (4 MB) size."""
    from pymongo import MongoClient

    with own_ferretdb(tmp_path) as (url, _), MongoClient(url) as client:
        db = client["walcheck"]
        db["p"].insert_many([{"_id": f"d{i}", "version": 1, "text": "x" * 200} for i in range(500)])
        for version in range(1, 11):  # 5,000 conditional upserts, as the projector sends
            updates = [
                {
                    "q": {"_id": f"d{i}", "version": version},
                    "u": {"$set": {"version": version + 1}},
                    "upsert": True,
                }
                for i in range(500)
            ]
            reply = db.command({"update": "p", "updates": updates, "ordered": True})
            assert reply["nModified"] == 500
        assert db["p"].count_documents({"version": 11}) == 500
        wal = tmp_path / "stack" / "mongo" / "sqlite" / "walcheck.sqlite-wal"
        assert wal.exists()
        assert wal.stat().st_size < 8 * 1024 * 1024, wal.stat().st_size
