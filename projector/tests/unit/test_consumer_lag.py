"""The lag gauge after a rebalance: records of a partition no longer ours are not reported."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from tandem.runtime.projector import metrics
from tandem.runtime.projector.consumer import ProjectorConsumer

pytestmark = pytest.mark.unit


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, tp: TopicPartition) -> int:
        # aiokafka asserts the partition is assigned, which crashed the run after a rebalance
        assert tp in self.assigned, "Partition is not assigned"
        return 100


def test_lag_skips_partitions_revoked_since_the_batch() -> None:
    mine = TopicPartition("t", 0)  # partition 1 was revoked since the batch
    runner = ProjectorConsumer(
        FakeConsumer({mine}),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        topics=["t"],
        group_id="g",
    )
    batches: dict[TopicPartition, list[Any]] = {
        mine: [SimpleNamespace(topic="t", partition=0, offset=41)],
        TopicPartition("t", 1): [SimpleNamespace(topic="t", partition=1, offset=7)],
    }
    runner._update_lag(batches)
    assert metrics.LAG.labels("t", "0", "g")._value.get() == 58
