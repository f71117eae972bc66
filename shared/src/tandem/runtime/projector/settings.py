"""Every tunable of the projector (env ``TANDEM_<FIELD>``); see docs/projector.md."""

from __future__ import annotations

from pydantic import Field, field_validator

from tandem.settings import EnvList, TandemSettings

GROUP_PREFIX = "tandem-projector"


class ProjectorSettings(TandemSettings):
    """What one projector process serves comes from the apps (``TANDEM_APPS``); the settings
    only choose a subset of their read models and tune the loop."""

    http_port: int = Field(default=8003, ge=0, le=65535)
    read_models: EnvList = Field(default_factory=list)
    """The read models this process (and its consumer group) maintains; empty: every read
    model of the loaded apps. A totals read model needs its source read model beside it."""
    group_id: str | None = Field(default=None, min_length=1)
    """The consumer group; unset, derived from the read-model set (see ``served``)."""
    topics: EnvList | None = None
    """Instead of the derived topics, when the served read models consume one aggregate type
    only (a benchmark replaying its own topic); unset normally."""
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    fold_retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_s: float = Field(default=0.1, ge=0.0, le=60.0)
    infra_backoff_max_s: float = Field(default=10.0, ge=0.1, le=600.0)
    redis_retries: int = Field(default=3, ge=0, le=20)
    shutdown_grace_s: float = Field(default=20.0, ge=0.0, le=600.0)
    cache_ttl_s: float = Field(default=300.0, gt=0.0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    rebuild_page_size: int = Field(default=2000, ge=1, le=50_000)
    rebuild_settle_s: float = Field(default=5.0, ge=0.0, le=600.0)
    rebuild_catchup_margin: int = Field(default=10_000, ge=0)

    @field_validator("topics")
    @classmethod
    def _topics_not_empty(cls, value: list[str] | None) -> list[str] | None:
        # An empty TANDEM_TOPICS is a deploy mistake, not "derive them": refuse it loudly.
        if value is not None and not value:
            raise ValueError("topics: give at least one topic, or leave TANDEM_TOPICS unset")
        return value
