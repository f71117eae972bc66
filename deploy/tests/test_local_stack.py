"""The local stack CLI against real processes: failures name the server and its log,
``up`` is idempotent, ``down`` stops only what it started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

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


def test_without_cargo_the_server_build_is_a_clear_error(tmp_path: Path) -> None:
    """On a machine without Rust (and no mongod, no TANDEM_MONGO_URL) the first ``up`` says
    how to get cargo instead of failing somewhere in a build."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = _stack(
        tmp_path,
        "up",
        "mongo",
        PATH=str(empty),
        TANDEM_CACHE_DIR=str(tmp_path / "cache"),
        TANDEM_MONGO_URL="",
        TANDEM_MONGO_PORT=str(_free_port()),
    )
    assert result.returncode == 1
    assert "secantusd-rs is built from source with cargo" in result.stderr
    assert "rustup" in result.stderr


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("ferretdb", "TANDEM_MONGO_SERVER must be auto, mongod or secantusd-rs"),
        ("mongod", "TANDEM_MONGO_SERVER=mongod but no mongod on PATH"),
    ],
)
def test_an_unusable_mongo_server_choice_is_a_clear_error(
    tmp_path: Path, server: str, message: str
) -> None:
    if server == "mongod" and shutil.which("mongod"):
        pytest.skip("a mongod is on PATH here")
    result = _stack(
        tmp_path,
        "up",
        "mongo",
        TANDEM_MONGO_URL="",
        TANDEM_MONGO_SERVER=server,
        TANDEM_MONGO_PORT=str(_free_port()),
    )
    assert result.returncode == 1
    assert message in result.stderr


def test_the_default_server_starts_with_bounded_cache_and_its_files_in_the_stack_dir(
    tmp_path: Path,
) -> None:
    """secantusd-rs (no mongod on PATH): pinned binary from the cache, data and log under the
    stack directory, the durability setting in its environment; status, kill and reset."""
    if shutil.which("mongod"):
        pytest.skip("a mongod on PATH is preferred over secantusd-rs")
    port = str(_free_port())
    env = {"TANDEM_MONGO_URL": "", "TANDEM_MONGO_PORT": port}
    up = _stack(tmp_path, "up", "mongo", **env)
    assert up.returncode == 0, up.stderr
    stack_dir = tmp_path / "stack"
    try:
        pid = int((stack_dir / "mongo.pid").read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")
        assert Path(argv[0].decode()).name.startswith("secantusd-rs-")
        assert f"--storage-path={stack_dir / 'mongo' / 'secantus'}".encode() in argv
        assert b"--cache-size=256M" in argv
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\x00")
        assert b"SECANTUS_WT_CONFIG_EXTRA=transaction_sync=(enabled=true,method=none)" in environ
        assert any((stack_dir / "mongo" / "secantus").iterdir())
        assert (stack_dir / "mongo.log").exists()
        status = _stack(tmp_path, "status", "mongo", **env)
        assert status.returncode == 0
        assert "ready" in status.stdout
        killed = _stack(tmp_path, "kill", "mongo", **env)
        assert killed.returncode == 0, killed.stderr
        assert _stack(tmp_path, "status", "mongo", **env).returncode == 1
    finally:
        reset = _stack(tmp_path, "reset", "mongo", **env)
    assert reset.returncode == 0, reset.stderr
    assert not (stack_dir / "mongo").exists()
    assert not (stack_dir / "mongo.log").exists()
