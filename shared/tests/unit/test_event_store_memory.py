import pytest
from contracts.event_store_contract import EventStoreContract
from tandem.event_store import EventStore, InMemoryEventStore

pytestmark = pytest.mark.unit


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def event_store(self) -> EventStore:
        return InMemoryEventStore()
