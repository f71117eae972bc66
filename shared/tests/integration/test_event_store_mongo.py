import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from domain_fixtures import Product
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tandem.aggregate import AggregateRepository
from tandem.errors import ConcurrencyError
from tandem.event_store import EventStore
from tandem.event_store.mongo import MongoEventStore
from tandem.event_store.mongo_snapshots import MongoSnapshotStore
from tandem.snapshots import Snapshot
from tandem.testing.contracts.event_store import EventStoreContract, added, removed

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = f"t_es_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
async def event_store(database: AsyncDatabase[dict[str, Any]]) -> EventStore:
    store = MongoEventStore(database)
    await store.ensure_indexes()
    return store


class TestMongoEventStore(EventStoreContract):
    pass


async def test_fifty_concurrent_appends_one_success_fortynine_conflicts(
    event_store: MongoEventStore,
) -> None:
    stream = f"p-{uuid.uuid4().hex}"
    outcomes = await asyncio.gather(
        *(event_store.append(added(stream, f"s{i}"), expected_version=0) for i in range(50)),
        return_exceptions=True,
    )
    successes = [o for o in outcomes if o == 1]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert len(successes) == 1
    assert len(conflicts) == 49
    assert all(c.expected_version == 0 and c.actual_version == 1 for c in conflicts)
    assert len(await event_store.get_events(stream)) == 1


async def test_one_document_per_commit_with_unique_stream_index(
    event_store: MongoEventStore, database: AsyncDatabase[dict[str, Any]]
) -> None:
    stream = f"p-{uuid.uuid4().hex}"
    await event_store.append([added(stream), removed(stream)], expected_version=0)
    documents = await database["events"].find({"aggregate_id": stream}).to_list()
    assert len(documents) == 1
    document = documents[0]
    assert (document["version"], document["last_version"]) == (1, 2)
    assert document["published"] is False
    assert [e["event_type"] for e in document["events"]] == [
        "ContractItemAdded",
        "ContractItemRemoved",
    ]
    indexes = await database["events"].index_information()
    assert indexes["stream_version_unique"]["unique"] is True


async def test_snapshot_store_round_trips_decimal_state(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoSnapshotStore(database)
    assert await store.get("x") is None
    await store.save(Snapshot("x", "Product", 3, {"price": Decimal("1.10"), "tags": ["a"]}))
    snapshot = await store.get("x")
    assert snapshot is not None
    assert snapshot.version == 3
    assert snapshot.state == {"price": Decimal("1.10"), "tags": ["a"]}


async def test_repository_on_mongo_same_state_with_and_without_snapshots(
    event_store: MongoEventStore, database: AsyncDatabase[dict[str, Any]]
) -> None:
    plain = AggregateRepository(Product, event_store)
    snapshotting = AggregateRepository(
        Product, event_store, snapshot_store=MongoSnapshotStore(database), snapshot_every=3
    )
    product = Product.create("p-" + uuid.uuid4().hex, "Lamp", Decimal("10.00"))
    await snapshotting.save(product)
    for step in range(7):
        loaded = await snapshotting.load(product.id)
        loaded.change_price(Decimal(11 + step))
        await snapshotting.save(loaded)
    with_snapshots = await snapshotting.load(product.id)
    without = await plain.load(product.id)
    assert with_snapshots.version == without.version == 8
    assert with_snapshots.snapshot_state() == without.snapshot_state()


async def test_long_streams_with_commits_across_read_windows_load_whole(
    event_store: EventStore,
) -> None:
    """Streams are read by commit ``_id`` in growing windows (64, 128, ...): commits of 1 to
    70 events, one spanning a whole window, must all come back in order, and the current
    version must be the last one."""
    stream = f"long-{uuid.uuid4().hex[:8]}"
    version = 0
    for size in (1, 62, 3, 70, 1, 1, 200, 5):
        events = [added(stream, f"item-{version + i}") for i in range(size)]
        version = await event_store.append(events, expected_version=version)
    assert version == 343
    loaded = await event_store.get_events(stream)
    assert [e.version for e in loaded] == list(range(1, 344))
    assert await event_store.current_version(stream) == 343
    # From any version: inside a commit, at its start or end, inside the 200-event commit
    # (no commit starts within 64 versions before 300: the whole-stream path), past the end.
    for start in (2, 3, 63, 64, 65, 66, 67, 100, 136, 137, 138, 139, 140, 200, 300, 338, 339, 343):
        loaded = await event_store.get_events(stream, from_version=start)
        assert [e.version for e in loaded] == list(range(start, 344)), start
    assert await event_store.get_events(stream, from_version=344) == []
    assert await event_store.get_events(stream, from_version=1000) == []
    assert await event_store.get_events(f"{stream}-none", from_version=5) == []
    assert await event_store.current_version(f"{stream}-none") == 0
    assert await event_store.get_events(f"{stream}-none") == []
