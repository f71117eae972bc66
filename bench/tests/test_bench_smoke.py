"""The bench machinery end to end on a tiny workload: every part runs and reports numbers.

Never asserts timings (they depend on the machine); only that the JSON has every key and
that the figures are positive. Uses its own port block and data directory, so it never meets a
`make bench`, `make run` or `make test` stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bench_env(stack_dir: str) -> dict[str, str]:
    """Free ports, so two sessions on one machine (two worktrees) never meet."""
    return {
        **os.environ,
        "BENCH_KAFKA_PORT": str(_free_port()),
        "BENCH_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "BENCH_MONGO_PORT": str(_free_port()),
        "BENCH_REDIS_PORT": str(_free_port()),
        "BENCH_STACK_DIR": str(REPO / ".cache" / "tandem" / stack_dir),
    }


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_bench_runs_every_part_on_a_tiny_workload(tmp_path: Path) -> None:
    env = _bench_env("stack-bench-test")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert results["errors"] == {}, results["errors"]

    raw = results["raw"]
    for key in ("bare_fastapi", "mongo_inserts", "mongo_bulk_upserts", "redis_get"):
        assert raw[key]["rate"] > 0, key
    assert raw["kafka"]["produce"]["rate"] > 0
    assert raw["kafka"]["consume"]["rate"] > 0

    sc = results["scenarios"]
    assert sc["writes"]["rate"] > 0
    assert sc["writes"]["p99_ms"] > 0
    for key in ("read_model", "websocket"):
        assert sc["freshness"][key]["p99_ms"] > 0, key
    for key in ("replay_1", "replay_2"):
        assert sc[key]["rate"] > 0, key
        assert sc[key]["applied_events"] == sc[key]["events"], key
    for key in ("cache_hit", "cache_miss", "search", "search_distinct"):
        assert sc["reads"][key]["rate"] > 0, key
    assert sc["fanout"]["frames"] > 0
    assert sc["fanout"]["rate"] > 0

    figures = {row["figure"] for row in results["table"]}
    assert any(f.startswith("(a)") for f in figures)
    assert any(f.startswith("(e)") for f in figures)
    assert all("verdict" in row for row in results["table"] if "target" in row)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_sigterm_stops_the_benchs_servers_and_services_as_ctrl_c_does(tmp_path: Path) -> None:
    env = _bench_env("stack-bench-sigterm")
    stack_dir = Path(env["BENCH_STACK_DIR"])
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--tiny", "--only", "writes", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert bench.stderr is not None
        for line in bench.stderr:  # the services answer /readyz before "writes ..." is logged
            if "bench: writes ..." in line:
                break
        else:
            pytest.fail(f"the bench ended before its scenario (exit {bench.wait()})")
        threading.Thread(target=bench.stderr.read, daemon=True).start()  # keep the pipe open
        servers = {
            int((stack_dir / f"{name}.pid").read_text().split()[0])
            for name in ("kafka", "mongo", "redis")
        }
        services = _children(bench.pid)
        assert len(services) >= 3, services  # three services (and stack.py calls, maybe)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=120) == 130
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in servers | services):
            time.sleep(0.2)
        assert [p for p in servers | services if _alive(p)] == []
        assert not list(stack_dir.glob("*.pid"))
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        subprocess.run(
            [sys.executable, str(REPO / "deploy" / "local" / "stack.py"), "down"],
            env={**env, "TANDEM_STACK_DIR": str(stack_dir)},
            check=False,
            capture_output=True,
        )
