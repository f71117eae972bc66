"""The command-service's own Prometheus collectors.

Commands by type and outcome and their latency come from the mediator's ``MetricsBehaviour``
(``tandem_messages_total``, ``tandem_message_duration_seconds``); these cover the outbox.
Collectors are module level because the Prometheus registry is process wide: tests build many
apps in one process and must not register the same name twice.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_BACKLOG = Gauge(
    "tandem_outbox_backlog",
    "Commits stored but not yet marked published (measured by the relay)",
)
PUBLISH_QUEUE = Gauge(
    "tandem_publish_queue_size", "Commits waiting for the fast-path publisher in this process"
)
EVENTS_PUBLISHED = Counter(
    "tandem_events_published_total", "Events acknowledged by Kafka", ("path",)
)
PUBLISH_ERRORS = Counter(
    "tandem_publish_errors_total",
    "Failed publish attempts (the commits stay in the outbox)",
    ("path",),
)
IDEMPOTENT_REPLAYS = Counter(
    "tandem_idempotent_replays_total", "Requests answered from a stored Idempotency-Key response"
)
