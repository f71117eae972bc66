"""Names and shapes the services agree on: topics, CloudEvents headers, change notices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tandem.events import DomainEvent

PRODUCT_TOPIC = "tandem.product.events"
DLQ_SUFFIX = ".dlq"
PROJECTOR_GROUP = "tandem-projector"
CHANGES_CHANNEL = "tandem.changes.product"
CLOUDEVENTS_SOURCE = "/tandem/command-service"


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


class ChangeNotice(BaseModel):
    """What the projector publishes on Redis after a read model changed.

    Published only after the read model (and cache) write is durable, so a reader woken by a
    notice for version V always finds at least V.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    version: int
    event_type: str
    changed_fields: dict[str, object]
    correlation_id: str | None = None
    occurred_at: str | None = None


# --- read side (projector writes, query-service reads) ---------------------------------------
# The projector may rebuild a read model into a new collection; readers find the collection to
# read in a pointer document: db[READ_MODEL_POINTERS].find_one({"_id": "products"})["active"].
# Without a pointer document, readers use the logical name itself ("products").
READ_MODEL_POINTERS = "read_model_pointers"
PRODUCTS_READ_MODEL = "products"
CATEGORY_STATS_READ_MODEL = "category_stats"
PRODUCT_CACHE_PREFIX = "tandem:products:"


def product_cache_key(product_id: str) -> str:
    return f"{PRODUCT_CACHE_PREFIX}{product_id}"


Headers = list[tuple[str, bytes]]


def cloudevent_headers(event: DomainEvent, source: str = CLOUDEVENTS_SOURCE) -> Headers:
    """CloudEvents 1.0 Kafka binary-mode headers of a product event (docs/conventions.md): what
    the command-service sends, and what tests and tools that produce events directly send."""
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
