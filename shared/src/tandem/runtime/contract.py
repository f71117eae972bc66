"""What crosses process boundaries, for every app: CloudEvents headers on Kafka, change notices
on Redis, and the rebuild pointer in MongoDB. Names per aggregate type and read model come
from the declaration (:mod:`tandem.app`); this module holds only their shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tandem.events import DomainEvent

CLOUDEVENTS_SOURCE = "/tandem/command-service"
DLQ_SUFFIX = ".dlq"
READ_MODEL_POINTERS = "read_model_pointers"
"""A rebuild fills a fresh collection, then points readers at it:
``db[READ_MODEL_POINTERS].find_one({"_id": <read model>})["active"]``. Without a pointer
document, readers use the read model's own name."""

Headers = list[tuple[str, bytes]]


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


class ChangeNotice(BaseModel):
    """What the projector publishes on a read model's channel after its document changed.

    Published only after the read model (and cache) write is durable, so a reader woken by a
    notice for version V always finds at least V. ``read_model`` keeps two apps (or two read
    models) with the same ids apart in caches, waiters and search caches.
    """

    model_config = ConfigDict(frozen=True)

    read_model: str
    id: str
    version: int
    event_type: str
    changed_fields: dict[str, object]
    correlation_id: str | None = None
    occurred_at: str | None = None


def cloudevent_headers(event: DomainEvent, source: str = CLOUDEVENTS_SOURCE) -> Headers:
    """CloudEvents 1.0 Kafka binary-mode headers of an event (docs/conventions.md): what the
    command-service sends, and what tests and tools that produce events directly send."""
    aggregate_id = event.aggregate_id.encode()
    headers: Headers = [
        ("ce_id", event.event_id.encode()),
        ("ce_type", event.event_type.encode()),
        ("ce_source", source.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_subject", aggregate_id),
        ("content-type", b"application/json"),
        ("partitionkey", aggregate_id),
    ]
    if event.correlation_id:
        headers.append(("ce_correlationid", event.correlation_id.encode()))
    return headers
