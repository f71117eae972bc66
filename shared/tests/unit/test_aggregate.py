import shutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from domain_fixtures import Product, ProductDiscontinued, ProductPriceChanged, ProductRegistered
from tandem.aggregate import AggregateRepository, AggregateRoot
from tandem.errors import AggregateNotFound, ConcurrencyError, DomainError
from tandem.event_store import InMemoryEventStore
from tandem.snapshots import InMemorySnapshotStore, Snapshot
from tandem.testing.aggregate import AggregateScenario

pytestmark = pytest.mark.unit


def _new_id() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def test_recording_applies_queues_and_versions_events() -> None:
    product = Product.create("p1", "Lamp", Decimal(10))
    product.change_price(Decimal(12))
    assert product.version == 2
    assert product.price == Decimal(12)
    assert [e.version for e in product.pending_events] == [1, 2]
    assert all(e.aggregate_type == "Product" for e in product.pending_events)
    product.clear_pending()
    assert product.pending_events == ()


def test_replay_rebuilds_the_same_state_and_rejects_gaps() -> None:
    original = Product.create("p1", "Lamp", Decimal(10))
    original.change_price(Decimal(11))
    original.discontinue()
    replayed = Product.from_history("p1", original.pending_events)
    assert replayed.snapshot_state() == original.snapshot_state()
    assert replayed.version == 3
    with pytest.raises(ValueError, match="gap"):
        Product.from_history("p1", [original.pending_events[0], original.pending_events[2]])


def test_event_without_applier_is_an_error() -> None:
    class Bare(AggregateRoot):
        pass

    with pytest.raises(TypeError, match="no @applies"):
        Bare("x").raise_event(ProductDiscontinued(aggregate_id="x", aggregate_type="Bare"))


def test_raise_event_refuses_another_aggregates_event() -> None:
    with pytest.raises(ValueError, match="raised on"):
        Product("a").raise_event(ProductDiscontinued(aggregate_id="b", aggregate_type="Product"))


async def test_repository_saves_with_expected_version_and_loads() -> None:
    store = InMemoryEventStore()
    repository = AggregateRepository(Product, store)
    product = Product.create(_new_id(), "Lamp", Decimal(10))
    saved = await repository.save(product)
    assert [type(e) for e in saved] == [ProductRegistered]
    assert product.pending_events == ()
    assert await repository.save(product) == []

    first, second = await repository.load(product.id), await repository.load(product.id)
    first.change_price(Decimal(20))
    second.change_price(Decimal(30))
    await repository.save(first)
    with pytest.raises(ConcurrencyError) as raised:
        await repository.save(second)
    assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
    assert (await repository.load(product.id)).price == Decimal(20)


async def test_cached_aggregates_are_copies_and_stale_ones_are_never_stored() -> None:
    store = InMemoryEventStore()
    here = AggregateRepository(Product, store, cache_size=2)
    elsewhere = AggregateRepository(Product, store)  # another process, same event store
    product = Product.create(_new_id(), "Lamp", Decimal(10))
    await here.save(product)

    copy = here.cached(product.id)
    assert copy is not None
    assert copy is not product
    assert (copy.version, copy.price) == (1, Decimal(10))
    copy.change_price(Decimal(99))  # an unsaved change does not leak into the cache
    assert here.cached(product.id).price == Decimal(10)  # type: ignore[union-attr]

    other = await elsewhere.load(product.id)
    other.change_price(Decimal(20))
    await elsewhere.save(other)

    stale = here.cached(product.id)
    assert stale is not None
    assert stale.version == 1  # the cache does not know about the other process
    stale.change_price(Decimal(30))
    with pytest.raises(ConcurrencyError):
        await here.save(stale)
    assert here.cached(product.id) is None  # evicted by the conflict
    fresh = await here.load(product.id)
    assert (fresh.version, fresh.price) == (2, Decimal(20))
    assert here.cached(product.id).version == 2  # type: ignore[union-attr]

    for _ in range(2):  # bounded: the least recently used goes first
        await here.save(Product.create(_new_id(), "More", Decimal(1)))
    assert here.cached(product.id) is None


async def test_without_cache_size_nothing_is_cached() -> None:
    repository = AggregateRepository(Product, InMemoryEventStore())
    product = Product.create(_new_id(), "Lamp", Decimal(10))
    await repository.save(product)
    await repository.load(product.id)
    assert repository.cached(product.id) is None


async def test_creating_an_existing_aggregate_conflicts() -> None:
    repository = AggregateRepository(Product, InMemoryEventStore())
    await repository.save(Product.create("dup", "A", Decimal(1)))
    with pytest.raises(ConcurrencyError):
        await repository.save(Product.create("dup", "B", Decimal(1)))


async def test_missing_or_foreign_aggregate_is_not_found() -> None:
    store = InMemoryEventStore()
    repository = AggregateRepository(Product, store)
    with pytest.raises(AggregateNotFound):
        await repository.load("nope")
    assert await repository.get("nope") is None
    await store.append(ProductDiscontinued(aggregate_id="order-1", aggregate_type="Order"))
    with pytest.raises(AggregateNotFound):
        await repository.load("order-1")


async def test_snapshots_give_the_same_state_as_full_replay() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    plain = AggregateRepository(Product, store)
    snapshotting = AggregateRepository(Product, store, snapshot_store=snapshots, snapshot_every=5)
    product = Product.create(_new_id(), "Lamp", Decimal(1))
    await snapshotting.save(product)
    for price in range(2, 14):
        loaded = await snapshotting.load(product.id)
        loaded.change_price(Decimal(price))
        await snapshotting.save(loaded)
    snapshot = await snapshots.get(product.id)
    assert snapshot is not None
    assert snapshot.version == 10
    with_snapshot, without = await snapshotting.load(product.id), await plain.load(product.id)
    assert with_snapshot.version == without.version == 13
    assert with_snapshot.snapshot_state() == without.snapshot_state()
    assert with_snapshot.price_history == [Decimal(p) for p in range(1, 13)]


async def test_loading_reads_only_events_after_the_snapshot() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repository = AggregateRepository(Product, store, snapshot_store=snapshots)
    product = Product.create("p1", "Lamp", Decimal(1))
    product.change_price(Decimal(2))
    await repository.save(product)
    # A doctored snapshot proves the repository trusts it and replays only what follows.
    await snapshots.save(Snapshot("p1", "Product", 1, {"name": "FromSnapshot", "price": 1}))
    loaded = await repository.load("p1")
    assert (loaded.name, loaded.price, loaded.version) == ("FromSnapshot", Decimal(2), 2)


async def test_failed_snapshot_write_does_not_fail_the_save() -> None:
    class Broken(InMemorySnapshotStore):
        async def save(self, snapshot: Snapshot) -> None:
            raise RuntimeError("snapshot store down")

    store = InMemoryEventStore()
    repository = AggregateRepository(Product, store, snapshot_store=Broken(), snapshot_every=1)
    await repository.save(Product.create("p1", "Lamp", Decimal(1)))
    assert await store.current_version("p1") == 1


def test_scenario_given_when_then_events() -> None:
    (
        AggregateScenario(Product, "p1")
        .given(ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="L", price=1))
        .when(lambda product: product.change_price(Decimal(5)))
        .then(ProductPriceChanged(aggregate_id="p1", aggregate_type="Product", price=Decimal(5)))
    )


def test_scenario_for_a_creation_and_for_a_no_op() -> None:
    scenario = AggregateScenario(Product, "p1").when(
        lambda _: Product.create("p1", "Lamp", Decimal(3))
    )
    scenario.then(
        ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="Lamp", price=3)
    )
    (
        AggregateScenario(Product, "p1")
        .given(ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="L", price=1))
        .when(lambda product: product.change_price(Decimal(1)))
        .then_nothing()
    )


def test_scenario_expects_a_broken_rule() -> None:
    error = (
        AggregateScenario(Product, "p1")
        .given(
            ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="L", price=1),
            ProductDiscontinued(aggregate_id="p1", aggregate_type="Product"),
        )
        .when(lambda product: product.change_price(Decimal(2)))
        .then_raises(DomainError, code="discontinued")
    )
    assert isinstance(error, DomainError)
    assert error.status_code == 409


def test_scenario_reports_mismatches() -> None:
    scenario = (
        AggregateScenario(Product, "p1")
        .given(ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="L", price=1))
        .when(lambda product: product.change_price(Decimal(5)))
    )
    with pytest.raises(AssertionError, match="events differ"):
        scenario.then(ProductPriceChanged(aggregate_id="p1", aggregate_type="Product", price=6))
    with pytest.raises(AssertionError, match="expected DomainError"):
        scenario.then_raises(DomainError)
    with pytest.raises(AssertionError, match="when"):
        AggregateScenario(Product).then()


SCENARIO_TESTS = """
from decimal import Decimal

import pytest
from tandem.testing.aggregate import AggregateScenario
from domain_fixtures import Product, ProductRegistered

pytestmark = pytest.mark.unit


def registered():
    return ProductRegistered(aggregate_id="p1", aggregate_type="Product", name="L", price=1)


def test_when_without_then():
    AggregateScenario(Product, "p1").given(registered()).when(lambda p: p.change_price(Decimal(5)))


def test_when_that_crashed_without_then():
    AggregateScenario(Product, "p1").when(lambda p: 1 / 0)


def test_when_then():
    (
        AggregateScenario(Product, "p1")
        .given(registered())
        .when(lambda p: p.change_price(Decimal(1)))
        .then_nothing()
    )
"""


def test_a_when_without_then_fails_the_test(tmp_path: Path) -> None:
    """Through the ``tandem.testing.checks`` plugin, in a pytest run of its own."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tandem.testing.checks"]\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: tier\n")
    (tmp_path / "test_scenarios.py").write_text(SCENARIO_TESTS)
    shutil.copy(Path(__file__).parents[1] / "domain_fixtures.py", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert "FAILED test_scenarios.py::test_when_without_then" in out, out
    assert "FAILED test_scenarios.py::test_when_that_crashed_without_then" in out, out
    assert "PASSED test_scenarios.py::test_when_then" in out, out
    assert "then_raises(): the scenario checks nothing" in out
