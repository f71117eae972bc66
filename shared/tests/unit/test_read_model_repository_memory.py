import pytest
from tandem import InMemoryReadModelRepository
from tandem.testing.contracts import ContractProduct, ReadModelRepositoryContract

pytestmark = pytest.mark.unit


class TestInMemoryReadModelRepository(ReadModelRepositoryContract):
    @pytest.fixture
    def repo(self) -> InMemoryReadModelRepository[ContractProduct]:
        return InMemoryReadModelRepository(ContractProduct)
