from typing import Optional

import pytest
from tandem import (
    DomainEvent,
    EventDispatcher,
    InMemoryProjectionRepository,
    InMemoryReadModelRepository,
    Projection,
    ProjectionError,
    ProjectionEventHandler,
    ProjectionGapError,
    ProjectionService,
    ReadModel,
    ReadModelId,
)
from tandem.testing import ProjectionTest

pytestmark = pytest.mark.unit


class Counter(ReadModel):
    pass


class Other(ReadModel):
    pass


class Incremented(DomainEvent):
    by: int = 1


class CounterProjection(Projection[Counter, Incremented]):
    def __init__(self, repository, event_type, fail_times: int = 0):
        super().__init__(repository, event_type)
        self.calls = 0
        self.fail_times = fail_times

    async def apply(self, event: Incremented) -> Optional[Counter]:  # noqa: UP045
        self.calls += 1
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("database down")
        current = await self.repository.get_by_id(event.aggregate_id)
        total = (current.data["total"] if current else 0) + event.by
        model = Counter(
            id=ReadModelId(value=event.aggregate_id), version=event.version, data={"total": total}
        )
        await self.repository.save(model)
        return model


class OtherProjection(CounterProjection):
    pass


def inc(version: int, aggregate_id: str = "c1", by: int = 1) -> Incremented:
    return Incremented(aggregate_id=aggregate_id, aggregate_type="Counter", version=version, by=by)


@pytest.fixture
def repo():
    return InMemoryReadModelRepository(Counter)


@pytest.fixture
async def setup(repo):
    service = ProjectionService(InMemoryProjectionRepository())
    projection = CounterProjection(repo, Incremented)
    await service.register_projection("Incremented", projection)
    return service, projection


async def test_applies_in_order_and_skips_duplicates(setup, repo):
    service, projection = setup
    for version in (1, 2, 2, 1, 3):
        await service.apply_event(inc(version))
    assert (await repo.get_by_id("c1")).data["total"] == 3
    assert projection.calls == 3


async def test_gap_is_reported_and_healable(setup, repo):
    service, _ = setup
    await service.apply_event(inc(1))
    with pytest.raises(ProjectionGapError) as info:
        await service.apply_event(inc(4))
    gap = info.value
    assert (gap.aggregate_id, gap.stored_version, gap.event_version) == ("c1", 1, 4)
    assert list(gap.missing_versions) == [2, 3]
    await service.apply_events([inc(3), inc(2), inc(4)])
    assert (await repo.get_by_id("c1")).version == 4


async def test_failure_is_raised_not_swallowed_and_retried(repo):
    service = ProjectionService(InMemoryProjectionRepository())
    projection = CounterProjection(repo, Incremented, fail_times=1)
    await service.register_projection("Incremented", projection)
    with pytest.raises(ProjectionError) as info:
        await service.apply_event(inc(1))
    assert isinstance(info.value.__cause__, RuntimeError)
    await service.apply_event(inc(1))  # not checkpointed, so the retry applies it
    assert (await repo.get_by_id("c1")).data["total"] == 1


async def test_several_projections_and_read_model_filter(repo):
    checkpoints = InMemoryProjectionRepository()
    dispatcher = EventDispatcher()
    published = []

    async def on_event(event):
        published.append(event.version)

    await dispatcher.subscribe("*", on_event)
    service = ProjectionService(checkpoints, event_dispatcher=dispatcher)
    other_repo = InMemoryReadModelRepository(Other)
    first, second = CounterProjection(repo, Incremented), OtherProjection(other_repo, Incremented)
    await service.register_projection("Incremented", first)
    await service.register_projection("Incremented", second)
    await service.register_projection("Incremented", first)  # registering twice is a no-op
    await service.apply_event(inc(1), event_type="Incremented", read_model_type="Counter")
    assert (first.calls, second.calls) == (1, 0)
    handler = ProjectionEventHandler(service, Incremented, Other)
    await handler.handle(inc(1))
    assert (first.calls, second.calls) == (1, 1)
    await service.apply_event(inc(1))  # duplicate for both: not re-published
    assert published == [1, 1]
    assert await checkpoints.get_version("OtherProjection", "c1") == 1
    await checkpoints.reset("OtherProjection")
    assert await checkpoints.get_version("OtherProjection", "c1") == 0
    assert await checkpoints.get_version("CounterProjection", "c1") == 1


async def test_projection_test_harness(repo):
    harness = ProjectionTest(CounterProjection(repo, Incremented))
    model = await harness.apply_event(inc(1, by=5))
    harness.assert_read_model_matches(model, {"version": 1, "total": 5})
    results = await harness.apply_events([inc(2), inc(3)])
    assert [r.version for r in results] == [2, 3]
    with pytest.raises(AssertionError, match="total"):
        harness.assert_read_model_matches(results[-1], {"total": 99})
