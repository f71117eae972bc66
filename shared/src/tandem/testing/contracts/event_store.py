"""The event store contract: every ``EventStore`` adapter must pass these tests.

Subclass :class:`EventStoreContract` in a test module and provide an ``event_store`` fixture
(a fresh, empty store per test). Event classes are module-level so an adapter that stores JSON
can deserialize them through the default registry. :func:`added` and :func:`removed` build
events for adapter-specific extra tests.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from tandem.errors import ConcurrencyError
from tandem.event_store import EventStore, commit_id_for
from tandem.events import DomainEvent


class ContractItemAdded(DomainEvent):
    sku: str
    price: Decimal


class ContractItemRemoved(DomainEvent):
    sku: str


def new_stream_id() -> str:
    return f"agg-{uuid.uuid4().hex[:10]}"


def added(aggregate_id: str, sku: str = "A", version: int = 1) -> ContractItemAdded:
    return ContractItemAdded(
        aggregate_id=aggregate_id,
        aggregate_type="Basket",
        version=version,
        sku=sku,
        price=Decimal("9.99"),
    )


def removed(aggregate_id: str, sku: str = "A", version: int = 1) -> ContractItemRemoved:
    return ContractItemRemoved(
        aggregate_id=aggregate_id, aggregate_type="Basket", version=version, sku=sku
    )


class EventStoreContract:
    """The tests every ``EventStore`` must pass; needs an ``event_store`` fixture."""

    async def test_new_stream_is_empty_at_version_zero(self, event_store: EventStore) -> None:
        assert await event_store.get_events(new_stream_id()) == []
        assert await event_store.current_version(new_stream_id()) == 0

    async def test_append_and_read_back_equal_events(self, event_store: EventStore) -> None:
        stream = new_stream_id()
        first, second = added(stream, version=1), removed(stream, version=2)
        assert await event_store.append([first, second], expected_version=0) == 2
        events = await event_store.get_events(stream)
        assert events == [first, second]
        assert isinstance(events[0], ContractItemAdded)
        assert events[0].price == Decimal("9.99")
        assert await event_store.read_stream(stream) == events
        assert await event_store.current_version(stream) == 2

    async def test_single_event_append_without_expectation_goes_after_current(
        self, event_store: EventStore
    ) -> None:
        stream = new_stream_id()
        await event_store.append(added(stream))
        assert await event_store.append(removed(stream)) == 2  # default version 1 is restamped
        assert [e.version for e in await event_store.get_events(stream)] == [1, 2]

    async def test_read_from_version_skips_earlier_events_even_inside_a_commit(
        self, event_store: EventStore
    ) -> None:
        stream = new_stream_id()
        await event_store.append([added(stream, "A"), added(stream, "B")], expected_version=0)
        await event_store.append(added(stream, "C"), expected_version=2)
        events = await event_store.get_events(stream, from_version=2)
        assert [e.version for e in events] == [2, 3]

    async def test_wrong_expected_version_raises_with_actual(self, event_store: EventStore) -> None:
        stream = new_stream_id()
        await event_store.append(added(stream), expected_version=0)
        with pytest.raises(ConcurrencyError) as raised:
            await event_store.append(added(stream), expected_version=0)
        assert raised.value.expected_version == 0
        assert raised.value.actual_version == 1
        with pytest.raises(ConcurrencyError):
            await event_store.append(added(stream), expected_version=5)
        assert await event_store.current_version(stream) == 1

    async def test_streams_are_independent(self, event_store: EventStore) -> None:
        one, two = new_stream_id(), new_stream_id()
        await event_store.append(added(one), expected_version=0)
        await event_store.append(added(two), expected_version=0)
        assert [e.aggregate_id for e in await event_store.get_events(one)] == [one]

    async def test_one_commit_cannot_mix_aggregates(self, event_store: EventStore) -> None:
        with pytest.raises(ValueError, match="one aggregate"):
            await event_store.append([added(new_stream_id()), added(new_stream_id())])

    async def test_concurrent_appends_at_same_version_exactly_one_wins(
        self, event_store: EventStore
    ) -> None:
        stream = new_stream_id()
        await event_store.append(added(stream), expected_version=0)
        outcomes = await asyncio.gather(
            *(event_store.append(removed(stream, f"s{i}"), expected_version=1) for i in range(50)),
            return_exceptions=True,
        )
        assert sum(1 for o in outcomes if o == 2) == 1
        assert sum(1 for o in outcomes if isinstance(o, ConcurrencyError)) == 49
        assert await event_store.current_version(stream) == 2

    async def test_concurrent_boundary_appends_exactly_one_wins(
        self, event_store: EventStore
    ) -> None:
        """The one-round-trip path (the caller loaded the stream) is just as strict."""
        stream = new_stream_id()
        await event_store.append([added(stream), removed(stream)], expected_version=0)
        outcomes = await asyncio.gather(
            *(
                event_store.append(
                    removed(stream, f"s{i}"), expected_version=2, expected_is_boundary=True
                )
                for i in range(20)
            ),
            return_exceptions=True,
        )
        assert sum(1 for o in outcomes if o == 3) == 1
        conflicts = [o for o in outcomes if isinstance(o, ConcurrencyError)]
        assert len(conflicts) == 19
        assert all(c.actual_version == 3 for c in conflicts)
        assert [e.version for e in await event_store.get_events(stream)] == [1, 2, 3]

    async def test_concurrent_unchecked_appends_all_land_without_gaps(
        self, event_store: EventStore
    ) -> None:
        stream = new_stream_id()
        await asyncio.gather(*(event_store.append(added(stream, f"s{i}")) for i in range(10)))
        versions = [e.version for e in await event_store.get_events(stream)]
        assert versions == list(range(1, 11))

    async def test_read_all_pages_in_store_order(self, event_store: EventStore) -> None:
        streams = [new_stream_id() for _ in range(3)]
        for stream in streams:
            await event_store.append(added(stream), expected_version=0)
        await event_store.append(removed(streams[0]), expected_version=1)
        commits = []
        after: int | None = None
        while page := await event_store.read_all(after=after, limit=2):
            commits.extend(page)
            after = page[-1].position
        ours = [c for c in commits if c.aggregate_id in streams]
        assert [(c.aggregate_id, c.version) for c in ours] == [
            (streams[0], 1),
            (streams[1], 1),
            (streams[2], 1),
            (streams[0], 2),
        ]
        positions = [c.position for c in commits]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)
        assert ours[0].events[0].aggregate_id == streams[0]

    async def test_outbox_lists_unpublished_until_marked(self, event_store: EventStore) -> None:
        stream = new_stream_id()
        await event_store.append([added(stream), added(stream, "B")], expected_version=0)
        await event_store.append(removed(stream), expected_version=2)
        unpublished = [c for c in await event_store.list_unpublished() if c.aggregate_id == stream]
        assert [(c.version, c.last_version) for c in unpublished] == [(1, 2), (3, 3)]
        assert unpublished[0].commit_id == commit_id_for(stream, 1)
        assert not unpublished[0].published
        await event_store.mark_published([commit_id_for(stream, 1)])
        left = [c for c in await event_store.list_unpublished() if c.aggregate_id == stream]
        assert [c.version for c in left] == [3]

    async def test_outbox_respects_age(self, event_store: EventStore) -> None:
        stream = new_stream_id()
        await event_store.append(added(stream), expected_version=0)
        recent = await event_store.list_unpublished(older_than=timedelta(hours=1))
        assert all(c.aggregate_id != stream for c in recent)


__all__ = [
    "ContractItemAdded",
    "ContractItemRemoved",
    "EventStoreContract",
    "added",
    "new_stream_id",
    "removed",
]
