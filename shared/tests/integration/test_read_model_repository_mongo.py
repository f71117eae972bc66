import uuid
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from tandem.read_model.mongo import MongoReadModelRepository
from tandem.testing.contracts import ContractProduct, ReadModelRepositoryContract

pytestmark = pytest.mark.integration


class TestMongoReadModelRepository(ReadModelRepositoryContract):
    @pytest.fixture
    async def repo(
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoReadModelRepository[ContractProduct]:
        repository = MongoReadModelRepository(
            ContractProduct,
            mongo_db[f"products_{uuid.uuid4().hex[:8]}"],
            index_fields=["category", "price"],
        )
        await repository.ensure_indexes()
        return repository
