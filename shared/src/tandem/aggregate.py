"""Event-sourced aggregates and their repository.

An aggregate changes only by recording events: a command method checks its rules (raising
:class:`~tandem.errors.DomainError`), then calls :meth:`AggregateRoot._record`, which applies the
event to the state and queues it for saving. Replaying the same events through :meth:`apply`
rebuilds the same state, which is what the repository does on load.

Appliers are marked with ``@applies(EventCls)``; an event without one is an error rather than a
silent no-op, so a forgotten applier shows up in the first test.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, Self, TypeVar

from tandem.errors import AggregateNotFound, ConcurrencyError
from tandem.event_store.protocol import EventStore
from tandem.events import DomainEvent
from tandem.snapshots import Snapshot, SnapshotStore

E = TypeVar("E", bound=DomainEvent)
F = TypeVar("F", bound=Callable[..., None])
logger = logging.getLogger(__name__)

_APPLIES_ATTR = "__tandem_applies__"


def applies(*event_types: type[DomainEvent]) -> Callable[[F], F]:
    """Mark a method as the applier of ``event_types``."""

    def decorate(fn: F) -> F:
        setattr(fn, _APPLIES_ATTR, event_types)
        return fn

    return decorate


class AggregateRoot:
    """Base of event-sourced aggregates. Subclasses take ``aggregate_id`` as their only
    ``__init__`` argument, because the repository builds them before replaying.

    ``version`` is the version of the last applied event (0 for a new aggregate).
    """

    aggregate_type: ClassVar[str] = "Aggregate"
    _appliers: ClassVar[dict[type[DomainEvent], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "aggregate_type" not in cls.__dict__:
            cls.aggregate_type = cls.__name__
        appliers: dict[type[DomainEvent], str] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                for event_type in getattr(attribute, _APPLIES_ATTR, ()):
                    appliers[event_type] = name
        cls._appliers = appliers

    def __init__(self, aggregate_id: str) -> None:
        self.id = aggregate_id
        self.version = 0
        self._pending: list[DomainEvent] = []

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        return tuple(self._pending)

    def clear_pending(self) -> None:
        self._pending.clear()

    def stamp_pending(self, *, correlation_id: str | None, causation_id: str | None) -> None:
        """Give every pending event the command's correlation and causation ids (where the
        aggregate did not set its own), so domain methods need not take them as arguments:
        the runtime calls this after a command decided and before the commit is appended.
        Ids never change state, so the already applied events need no replay."""
        if correlation_id is None and causation_id is None:
            return
        for index, event in enumerate(self._pending):
            update: dict[str, str] = {}
            if event.correlation_id is None and correlation_id is not None:
                update["correlation_id"] = correlation_id
            if event.causation_id is None and causation_id is not None:
                update["causation_id"] = causation_id
            if update:
                self._pending[index] = event.model_copy(update=update)

    def apply(self, event: DomainEvent) -> None:
        """Change state for ``event``; no rule checks here (history is already true)."""
        name = self._appliers.get(type(event))
        if name is None:
            name = next(
                (self._appliers[b] for b in type(event).__mro__ if b in self._appliers), None
            )
            if name is None:
                raise TypeError(f"{type(self).__name__} has no @applies for {event.event_type}")
        getattr(self, name)(event)
        self.version = event.version

    def raise_event(self, event: E) -> E:
        """Apply ``event`` and queue it; it gets version ``self.version + 1``."""
        if event.aggregate_id != self.id:
            raise ValueError(f"event for {event.aggregate_id!r} raised on {self.id!r}")
        version = self.version + 1
        if event.version != version:
            event = event.model_copy(update={"version": version})
        self.apply(event)
        self._pending.append(event)
        return event

    def _record(self, event_type: type[E], **data: Any) -> E:
        """Build an event of ``event_type`` for this aggregate and raise it."""
        event = event_type(
            aggregate_id=self.id,
            aggregate_type=self.aggregate_type,
            version=self.version + 1,
            **data,
        )
        return self.raise_event(event)

    def load_from_history(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            if event.version != self.version + 1:
                raise ValueError(
                    f"{self.aggregate_type} {self.id!r}: event version {event.version} "
                    f"after {self.version} (a gap or duplicate in the stream)"
                )
            self.apply(event)

    @classmethod
    def from_history(cls, aggregate_id: str, events: Iterable[DomainEvent]) -> Self:
        aggregate = cls(aggregate_id)
        aggregate.load_from_history(events)
        return aggregate

    def snapshot_state(self) -> dict[str, Any]:
        """State for a snapshot: public attributes, deep-copied. Override when the state holds
        objects a snapshot store cannot encode."""
        return {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if not key.startswith("_") and key not in ("id", "version")
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, copy.deepcopy(value))


TAggregate = TypeVar("TAggregate", bound=AggregateRoot)


class AggregateRepository(Generic[TAggregate]):
    """Loads aggregates by replaying their stream and saves their pending events as one commit.

    With a ``snapshot_store``, a snapshot is written whenever a save crosses a multiple of
    ``snapshot_every`` versions. A failed snapshot write is logged, not raised: the events are
    already stored, and a missing snapshot only costs replay time.

    With ``cache_size``, the state and version of the last ``cache_size`` aggregates loaded or
    saved stay in memory, and :meth:`cached` hands out a copy without a round trip. It may be
    stale (another process appended since): saving it then fails on the event store's unique
    version (:class:`~tandem.errors.ConcurrencyError`) and evicts it, so stale state is never
    stored. A caller that *rejects* a command on cached state, or finds nothing to do, cannot
    rely on that check and should decide again on a fresh :meth:`load`.
    """

    def __init__(
        self,
        aggregate_type: type[TAggregate],
        event_store: EventStore,
        *,
        snapshot_store: SnapshotStore | None = None,
        snapshot_every: int = 100,
        cache_size: int = 0,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self.aggregate_type = aggregate_type
        self.event_store = event_store
        self.snapshot_store = snapshot_store
        self.snapshot_every = snapshot_every
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()

    def cached(self, aggregate_id: str) -> TAggregate | None:
        """A copy of the aggregate as this repository last loaded or saved it, or ``None``."""
        hit = self._cache.get(aggregate_id)
        if hit is None:
            return None
        self._cache.move_to_end(aggregate_id)
        version, state = hit
        aggregate = self.aggregate_type(aggregate_id)
        aggregate.restore_state(state)
        aggregate.version = version
        return aggregate

    def forget(self, aggregate_id: str) -> None:
        self._cache.pop(aggregate_id, None)

    def _remember(self, aggregate: TAggregate) -> None:
        if self.cache_size == 0:
            return
        self._cache[aggregate.id] = (aggregate.version, aggregate.snapshot_state())
        self._cache.move_to_end(aggregate.id)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def load(self, aggregate_id: str) -> TAggregate:
        aggregate = self.aggregate_type(aggregate_id)
        snapshot = await self.snapshot_store.get(aggregate_id) if self.snapshot_store else None
        if snapshot is not None and snapshot.aggregate_type == aggregate.aggregate_type:
            aggregate.restore_state(snapshot.state)
            aggregate.version = snapshot.version
        events = await self.event_store.get_events(aggregate_id, from_version=aggregate.version + 1)
        if aggregate.version == 0 and not events:
            raise AggregateNotFound(aggregate_id, aggregate.aggregate_type)
        if events and events[0].aggregate_type != aggregate.aggregate_type:
            raise AggregateNotFound(aggregate_id, aggregate.aggregate_type)
        aggregate.load_from_history(events)
        self._remember(aggregate)
        return aggregate

    async def get(self, aggregate_id: str) -> TAggregate | None:
        try:
            return await self.load(aggregate_id)
        except AggregateNotFound:
            return None

    async def save(self, aggregate: TAggregate) -> list[DomainEvent]:
        """Append the pending events expecting the version they were raised on; returns them.

        Raises :class:`~tandem.errors.ConcurrencyError` if another writer got there first; the
        aggregate keeps its pending events so the caller can inspect them, but should reload.
        """
        pending = list(aggregate.pending_events)
        if not pending:
            return []
        expected = pending[0].version - 1
        # ``expected`` is the version this aggregate was loaded at: the end of a whole commit.
        try:
            await self.event_store.append(
                pending, expected_version=expected, expected_is_boundary=True
            )
        except ConcurrencyError:
            self.forget(aggregate.id)
            raise
        aggregate.clear_pending()
        self._remember(aggregate)
        if self.snapshot_store and aggregate.version // self.snapshot_every > expected // (
            self.snapshot_every
        ):
            await self._snapshot(aggregate)
        return pending

    async def _snapshot(self, aggregate: TAggregate) -> None:
        snapshot = Snapshot(
            aggregate_id=aggregate.id,
            aggregate_type=aggregate.aggregate_type,
            version=aggregate.version,
            state=aggregate.snapshot_state(),
        )
        try:
            assert self.snapshot_store is not None
            await self.snapshot_store.save(snapshot)
        except Exception:
            logger.warning("snapshot of %s failed", aggregate.id, exc_info=True)


__all__ = ["AggregateRepository", "AggregateRoot", "applies"]
