"""Event store port and adapters.

``MongoEventStore`` lives in :mod:`tandem.event_store.mongo` and is not imported here, so code
that only needs the port (aggregates, handlers, tests) does not load the MongoDB driver.
"""

from tandem.event_store.memory import InMemoryEventStore
from tandem.event_store.protocol import (
    EventStore,
    OutgoingCommit,
    StoredCommit,
    as_commit,
    commit_id_for,
    stamp_versions,
)

__all__ = [
    "EventStore",
    "InMemoryEventStore",
    "OutgoingCommit",
    "StoredCommit",
    "as_commit",
    "commit_id_for",
    "stamp_versions",
]
