"""The command runtime's settings: the shared connection settings plus every number it tunes.

Built once, in :mod:`tandem.runtime.command.bootstrap`; nothing else reads the environment.
Durations are in seconds with the suffix ``_s`` (``_ms`` where a client takes milliseconds).
"""

from __future__ import annotations

from pydantic import Field

from tandem.settings import EnvList, TandemSettings

# An app's live page, served by the query-service, posts commands from these origins.
DEV_CORS_ORIGINS = ("http://127.0.0.1:8002", "http://localhost:8002")


class CommandServiceSettings(TandemSettings):
    http_port: int = Field(default=8001, ge=0, le=65535)

    # Event store (one per app, on ``App.events_collection``)
    mongo_timeout_ms: int = Field(default=3000, ge=100)
    """Server selection / connect / socket timeout: how long a command waits before it gets a
    503 when MongoDB is unreachable."""
    mongo_max_pool_size: int = Field(default=200, ge=1)
    snapshot_every: int = Field(default=20, ge=0)
    """Snapshot an aggregate every this many versions (0: never). A load reads the snapshot, then
    the commits after it: one small read more per load, against replaying every commit
    (measured in docs/command-service.md)."""
    snapshots_collection: str = "snapshots"
    """Suffix of each app's snapshot collection (``<app>_snapshots``)."""
    aggregate_cache_size: int = Field(default=10_000, ge=0)
    """Aggregates (per type) whose last state this process keeps, to decide a command without
    reading the event store (0: always read). A stale entry is caught by the unique version and retried
    on a fresh read, so several replicas may each keep one."""

    # Publishing (one topic per aggregate type, ``AggregateSpec.topic``)
    kafka_request_timeout_ms: int = Field(default=30000, ge=1000)
    kafka_linger_ms: int = Field(default=2, ge=0)
    publish_batch_size: int = Field(default=500, ge=1)
    """Commits the background publisher sends before it awaits the acks and marks them."""
    publish_queue_size: int = Field(default=20000, ge=1)
    """Commits waiting for the fast path; beyond it they are left to the relay."""
    relay_interval_s: float = Field(default=5.0, gt=0)
    relay_grace_s: float = Field(default=10.0, ge=0)
    """A commit unpublished for this long is taken over by the relay (the fast path normally
    publishes within milliseconds, so the relay rarely duplicates its work)."""
    relay_batch_size: int = Field(default=500, ge=1)
    retry_backoff_s: float = Field(default=1.0, gt=0)
    """Seconds between attempts to reach Kafka or MongoDB at start-up and after a failed publish."""

    # HTTP
    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)
    idempotency_collection: str = "idempotency_keys"
    idempotency_purge_interval_s: float = Field(default=600.0, gt=0)
    retry_after_s: int = Field(default=2, ge=1)
    """The ``Retry-After`` a 503 carries."""

    cors_origins: EnvList | None = None
    """Origins whose browsers may send commands (env ``TANDEM_CORS_ORIGINS``: comma-separated
    or a JSON list; empty means none).
    Unset: the live page's origins (``DEV_CORS_ORIGINS``) in development, none otherwise."""

    @property
    def allowed_origins(self) -> list[str]:
        """``cors_origins``, or its default for the environment when unset."""
        if self.cors_origins is not None:
            return list(self.cors_origins)
        return list(DEV_CORS_ORIGINS) if self.environment == "development" else []
