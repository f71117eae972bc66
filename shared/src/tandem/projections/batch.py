"""Batch projections: a whole batch of events applied with a constant number of round trips.

:class:`~tandem.projections.ProjectionService.apply_event` costs a checkpoint read, a write and
a checkpoint write per event and projection, which caps a projector at a few hundred events/s
on a networked store. A :class:`BatchProjection` keeps the same contract (duplicates skipped,
gaps healed or reported, nothing swallowed) at batch granularity:

1. ``load`` the stored states of the batch's aggregates in one read; each state carries its
   version, which is the checkpoint (no separate checkpoint store to keep in step);
2. per aggregate, in version order, ``fold`` (pure) each event onto the state: an event at or
   below the state's version is a duplicate; one beyond ``version + 1`` is a gap, healed from
   the event store when one is given, else a :class:`ProjectionGapError`;
3. ``save`` the changes in one write, conditional on the versions loaded in 1 so that a second
   writer makes it fail instead of being overwritten.

:meth:`ProjectionService.plan_batch` does 1-2 and returns the :class:`BatchPlan`, so a caller
that writes more than the projection (another read model derived from the same fold, a cache)
can order those writes around ``save``; :meth:`ProjectionService.apply_batch` does all three.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from tandem.events import DomainEvent
from tandem.projections.projection import ProjectionError, ProjectionGapError

TState = TypeVar("TState")


class EventSource(Protocol):
    """What healing a gap needs from an event store (every ``EventStore`` has it)."""

    async def get_events(self, aggregate_id: str, from_version: int = 1) -> list[DomainEvent]: ...


class BatchProjection(ABC, Generic[TState]):
    """One read model maintained a batch at a time (see the module docstring)."""

    #: Event types (``DomainEvent.event_type``) the projection folds; ``None``: every type.
    event_types: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def handles(self, event: DomainEvent) -> bool:
        return self.event_types is None or event.event_type in self.event_types

    @abstractmethod
    async def load(self, aggregate_ids: list[str]) -> Mapping[str, TState]:
        """The stored states of those aggregates that have one (one read)."""

    @abstractmethod
    def version_of(self, state: TState) -> int:
        """The version of the last event folded into ``state`` (the checkpoint)."""

    @abstractmethod
    def fold(self, state: TState | None, event: DomainEvent) -> tuple[TState, Any]:
        """Apply ``event`` (always ``version_of(state) + 1``) and return the new state and
        anything the caller wants per step (e.g. the changed fields). Pure: no I/O, so a plan
        can be recomputed after a conflict. Raise to refuse the event."""

    @abstractmethod
    async def save(self, changes: list[AggregateChange[TState]]) -> None:
        """Write every changed aggregate, conditional on ``stored_version`` (one write)."""


@dataclass
class Step(Generic[TState]):
    event: DomainEvent
    state: TState
    output: Any
    healed: bool = False


@dataclass
class AggregateChange(Generic[TState]):
    """One aggregate's part of a batch: what was stored, the steps folded, the result."""

    aggregate_id: str
    stored_version: int
    stored: TState | None
    steps: list[Step[TState]] = field(default_factory=list)
    duplicates: int = 0

    @property
    def state(self) -> TState | None:
        return self.steps[-1].state if self.steps else self.stored

    @property
    def version(self) -> int:
        return int(self.steps[-1].event.version) if self.steps else self.stored_version

    @property
    def healed(self) -> int:
        return sum(1 for step in self.steps if step.healed)

    def states_by_version(self) -> dict[int, TState | None]:
        """The state after each version reached in this batch (and the stored one)."""
        states: dict[int, TState | None] = {self.stored_version: self.stored}
        for step in self.steps:
            states[int(step.event.version)] = step.state
        return states


@dataclass
class BatchPlan(Generic[TState]):
    """The folded batch of one projection; ``failed`` aggregates were not folded at all."""

    projection: BatchProjection[TState]
    changes: dict[str, AggregateChange[TState]] = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)

    @property
    def applied(self) -> int:
        return sum(len(change.steps) - change.healed for change in self.changes.values())

    @property
    def healed(self) -> int:
        return sum(change.healed for change in self.changes.values())

    @property
    def duplicates(self) -> int:
        return sum(change.duplicates for change in self.changes.values())

    def changed(self) -> list[AggregateChange[TState]]:
        return [change for change in self.changes.values() if change.steps]


async def plan(
    projection: BatchProjection[TState],
    events: Iterable[DomainEvent],
    *,
    stored: Mapping[str, TState] | None = None,
    event_source: EventSource | None = None,
) -> BatchPlan[TState]:
    """Fold ``events`` onto the stored states (loaded unless given); see the module docstring.

    Per aggregate, a :class:`ProjectionGapError` (gap and nothing to heal it from) or a
    :class:`ProjectionError` (``fold`` raised) lands in ``failed`` and the other aggregates
    are still planned, so one bad stream does not hold up the batch.
    """
    by_aggregate: dict[str, list[DomainEvent]] = defaultdict(list)
    for event in events:
        if projection.handles(event):
            by_aggregate[str(event.aggregate_id)].append(event)
    result: BatchPlan[TState] = BatchPlan(projection)
    if not by_aggregate:
        return result
    if stored is None:
        stored = await projection.load(list(by_aggregate))
    for aggregate_id, delivered in by_aggregate.items():
        state = stored.get(aggregate_id)
        version = projection.version_of(state) if state is not None else 0
        change: AggregateChange[TState] = AggregateChange(aggregate_id, version, state)
        try:
            for event in sorted(delivered, key=lambda e: int(e.version)):
                if event.version <= version:
                    change.duplicates += 1
                    continue
                chain = [(event, False)]
                if event.version > version + 1:
                    missing = await _missing(event_source, aggregate_id, version, event.version)
                    if missing is None:
                        raise ProjectionGapError(
                            aggregate_id, version, int(event.version), projection.name
                        )
                    chain = [*((e, True) for e in missing), (event, False)]
                for step_event, healed in chain:
                    try:
                        state, output = projection.fold(state, step_event)
                    except Exception as exc:
                        raise ProjectionError(projection.name, step_event, exc) from exc
                    change.steps.append(Step(step_event, state, output, healed))
                version = int(event.version)
        except (ProjectionGapError, ProjectionError) as exc:
            result.failed[aggregate_id] = exc
            continue
        result.changes[aggregate_id] = change
    return result


async def _missing(
    source: EventSource | None, aggregate_id: str, version: int, until: int
) -> list[DomainEvent] | None:
    """Versions ``version + 1 .. until - 1`` from the event store, or None if incomplete."""
    if source is None:
        return None
    found = [e for e in await source.get_events(aggregate_id, version + 1) if e.version < until]
    if [int(e.version) for e in found] != list(range(version + 1, until)):
        return None
    return found


__all__ = [
    "AggregateChange",
    "BatchPlan",
    "BatchProjection",
    "EventSource",
    "Step",
    "plan",
]
