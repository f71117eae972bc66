import pytest
from tandem.event_store import EventStore, InMemoryEventStore
from tandem.testing.contracts import EventStoreContract

pytestmark = pytest.mark.unit


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def event_store(self) -> EventStore:
        return InMemoryEventStore()
