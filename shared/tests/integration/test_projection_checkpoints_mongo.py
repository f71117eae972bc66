import asyncio

import pytest
from tandem.projections import InMemoryProjectionRepository, MongoProjectionRepository

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "mongo"])
async def checkpoints(request, mongo_db):
    if request.param == "memory":
        return InMemoryProjectionRepository()
    repository = MongoProjectionRepository(mongo_db["checkpoints"])
    await repository.ensure_indexes()
    return repository


async def test_checkpoints_only_move_forward(checkpoints):
    assert await checkpoints.get_version("P", "a") == 0
    await checkpoints.set_version("P", "a", 2)
    await checkpoints.set_version("P", "a", 1)
    assert await checkpoints.get_version("P", "a") == 2
    await asyncio.gather(*(checkpoints.set_version("P", "b", v) for v in range(1, 20)))
    assert await checkpoints.get_version("P", "b") == 19
    await checkpoints.set_version("Q", "a", 5)
    await checkpoints.reset("P")
    assert await checkpoints.get_version("P", "a") == 0
    assert await checkpoints.get_version("Q", "a") == 5
    await checkpoints.reset()
    assert await checkpoints.get_version("Q", "a") == 0
