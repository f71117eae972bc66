"""The bench machinery end to end on a tiny workload: every part runs and reports numbers.

Never asserts timings (they depend on the machine); only that the JSON has every key and
that the figures are positive. Uses its own port block and data directory, so it never meets a
`make bench`, `make run` or `make test` stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_bench_runs_every_part_on_a_tiny_workload(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BENCH_KAFKA_PORT": "49092",
        "BENCH_KAFKA_CONTROLLER_PORT": "49093",
        "BENCH_MONGO_PORT": "47017",
        "BENCH_REDIS_PORT": "46379",
        "BENCH_STACK_DIR": str(REPO / ".cache" / "tandem" / "stack-bench-test"),
    }
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
