"""Names and shapes the services agree on: topics, CloudEvents headers, change notices."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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
