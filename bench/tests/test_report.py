"""The table's verdicts: a freshness run that skipped ticks is never a PASS, and says so."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import rows

pytestmark = pytest.mark.unit


def _freshness(errors: int) -> dict[str, Any]:
    fast = {"p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}
    return {
        "scenarios": {
            "freshness": {
                "rate_target": 300.0,
                "errors": errors,
                "read_model": fast,
                "websocket": fast,
                "websocket_missing": 0,
            }
        }
    }


def _row(results: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in rows(results) if r["figure"] == "(b) freshness -> read model")


def test_fast_freshness_with_every_tick_measured_passes() -> None:
    row = _row(_freshness(errors=0))
    assert row["verdict"] == "PASS"
    assert row["raw"] == "at 300 cmd/s, 0 failed/skipped"


def test_fast_freshness_that_skipped_ticks_is_a_miss_and_says_how_many() -> None:
    row = _row(_freshness(errors=201))
    assert row["verdict"] == "MISS"
    assert row["raw"] == "at 300 cmd/s, 201 failed/skipped"
