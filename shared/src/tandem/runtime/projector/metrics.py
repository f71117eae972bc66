"""Prometheus metrics of the projector (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "tandem_projector_events_total",
    "Events by outcome: applied, duplicate (skipped), healed (read from the event store), "
    "dead_lettered",
    ["outcome"],
)
BATCH_SECONDS = Histogram(
    "tandem_projector_batch_apply_seconds",
    "Time to apply one batch (reads, conditional writes, cache, notices)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "tandem_projector_batch_records", "Records per batch", buckets=(1, 10, 50, 100, 500, 1000, 5000)
)
LAG = Gauge(
    "tandem_projector_lag",
    "Records behind the high watermark, per consumer group",
    ["topic", "partition", "group"],
)
CONFLICTS = Counter("tandem_projector_write_conflicts_total", "Batches recomputed after a conflict")
RETRIES = Counter("tandem_projector_retries_total", "Retries by kind", ["kind"])
REDIS_FAILURES = Counter(
    "tandem_projector_redis_failures_total", "Cache/notice writes given up after retries"
)
