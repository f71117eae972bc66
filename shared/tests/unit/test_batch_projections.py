"""Batch projections through ProjectionService: the per-event rules, a batch at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from tandem import DomainEvent, EventDispatcher, InMemoryEventStore, ProjectionService
from tandem.projections import (
    AggregateChange,
    BatchProjection,
    InMemoryProjectionRepository,
    ProjectionError,
    ProjectionGapError,
)

pytestmark = pytest.mark.unit


class Added(DomainEvent):
    amount: int


class Ignored(DomainEvent):
    pass


class Conflict(Exception):
    pass


class Totals(BatchProjection[dict[str, Any]]):
    """A running total per aggregate, stored as ``{"total", "version"}`` (the checkpoint)."""

    event_types = frozenset({"Added"})

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.loads = 0
        self.saves = 0

    async def load(self, aggregate_ids: list[str]) -> Mapping[str, dict[str, Any]]:
        self.loads += 1
        return {a: dict(self.rows[a]) for a in aggregate_ids if a in self.rows}

    def version_of(self, state: dict[str, Any]) -> int:
        return int(state["version"])

    def fold(self, state: dict[str, Any] | None, event: DomainEvent) -> tuple[dict[str, Any], Any]:
        assert isinstance(event, Added)
        if event.amount < 0:
            raise ValueError("negative amount")
        total = (state or {"total": 0})["total"] + event.amount
        return {"total": total, "version": event.version}, {"total": total}

    async def save(self, changes: list[AggregateChange[dict[str, Any]]]) -> None:
        self.saves += 1
        for change in changes:
            current = self.rows.get(change.aggregate_id, {}).get("version", 0)
            if current != change.stored_version:  # what a conditional write would refuse
                raise Conflict(change.aggregate_id)
        for change in changes:
            assert change.state is not None
            self.rows[change.aggregate_id] = change.state


def added(aggregate: str, version: int, amount: int = 1) -> Added:
    return Added(aggregate_id=aggregate, aggregate_type="Account", version=version, amount=amount)


def service(store: InMemoryEventStore | None = None, **kwargs: Any) -> ProjectionService:
    return ProjectionService(InMemoryProjectionRepository(), event_store=store, **kwargs)


async def test_a_batch_is_folded_in_version_order_with_one_load_and_one_save() -> None:
    projections, totals = service(), Totals()
    projections.register_batch_projection(totals)
    batch = [added("a", 3, 100), added("b", 1, 5), added("a", 1, 1), added("a", 2, 10)]
    plans = await projections.apply_batch(batch)
    assert totals.rows == {"a": {"total": 111, "version": 3}, "b": {"total": 5, "version": 1}}
    assert (totals.loads, totals.saves) == (1, 1)
    plan = plans["Totals"]
    assert (plan.applied, plan.duplicates, plan.healed, plan.failed) == (4, 0, 0, {})
    assert [s.output for s in plan.changes["a"].steps] == [
        {"total": 1},
        {"total": 11},
        {"total": 111},
    ]


async def test_duplicates_at_or_below_the_stored_version_are_skipped_and_counted() -> None:
    projections, totals = service(), Totals()
    projections.register_batch_projection(totals)
    await projections.apply_batch([added("a", 1, 1), added("a", 2, 2)])
    plans = await projections.apply_batch([added("a", 1, 1), added("a", 2, 2), added("a", 2, 2)])
    assert plans["Totals"].duplicates == 3
    assert plans["Totals"].changed() == []
    assert totals.saves == 1  # nothing changed, nothing written
    assert totals.rows["a"] == {"total": 3, "version": 2}


async def test_a_gap_is_healed_from_the_event_store_in_order() -> None:
    store = InMemoryEventStore()
    history = [added("a", 1, 1), added("a", 2, 10), added("a", 3, 100)]
    for event in history:
        await store.append(
            event.model_copy(update={"version": 0}), expected_version=event.version - 1
        )
    projections, totals = service(store), Totals()
    projections.register_batch_projection(totals)
    plans = await projections.apply_batch([added("a", 1, 1), added("a", 3, 100)])  # 2 lost
    assert totals.rows["a"] == {"total": 111, "version": 3}
    assert (plans["Totals"].applied, plans["Totals"].healed) == (2, 1)
    assert [s.healed for s in plans["Totals"].changes["a"].steps] == [False, True, False]


async def test_an_unhealable_gap_fails_only_its_aggregate_with_a_typed_error() -> None:
    projections, totals = service(), Totals()  # no event store to heal from
    projections.register_batch_projection(totals)
    plans = await projections.apply_batch([added("a", 2, 1), added("b", 1, 7)])
    error = plans["Totals"].failed["a"]
    assert isinstance(error, ProjectionGapError)
    assert list(error.missing_versions) == [1]
    assert totals.rows == {"b": {"total": 7, "version": 1}}


async def test_a_fold_that_raises_fails_its_aggregate_and_is_never_swallowed() -> None:
    projections, totals = service(), Totals()
    projections.register_batch_projection(totals)
    plans = await projections.apply_batch([added("a", 1, 1), added("a", 2, -1), added("b", 1, 2)])
    error = plans["Totals"].failed["a"]
    assert isinstance(error, ProjectionError)
    assert isinstance(error.__cause__, ValueError)
    assert "a" not in totals.rows  # none of a's batch is half-applied
    assert totals.rows["b"]["total"] == 2


async def test_events_of_other_types_are_not_folded() -> None:
    projections, totals = service(), Totals()
    projections.register_batch_projection(totals)
    ignored = Ignored(aggregate_id="a", aggregate_type="Account", version=1)
    plans = await projections.apply_batch([ignored])
    assert plans["Totals"].changes == {}
    assert totals.loads == 0  # no aggregate of interest: no read either


async def test_a_second_writer_makes_save_fail_and_a_fresh_plan_succeeds() -> None:
    projections, totals = service(), Totals()
    projections.register_batch_projection(totals)
    stale = await projections.plan_batch(totals, [added("a", 1, 1)])
    await projections.apply_batch([added("a", 1, 1)])  # the other writer
    with pytest.raises(Conflict):
        await totals.save(stale.changed())
    fresh = await projections.plan_batch(totals, [added("a", 1, 1), added("a", 2, 2)])
    await totals.save(fresh.changed())
    assert totals.rows["a"] == {"total": 3, "version": 2}


async def test_applied_events_are_dispatched_after_the_save() -> None:
    dispatcher, seen = EventDispatcher(), []
    totals = Totals()

    async def on_added(event: DomainEvent) -> None:
        seen.append((event.aggregate_id, event.version, dict(totals.rows.get("a", {}))))

    await dispatcher.subscribe("Added", on_added)
    projections = service(event_dispatcher=dispatcher)
    projections.register_batch_projection(totals)
    await projections.apply_batch([added("a", 1, 1), added("a", 1, 1), added("a", 2, 2)])
    assert seen == [("a", 1, {"total": 3, "version": 2}), ("a", 2, {"total": 3, "version": 2})]
