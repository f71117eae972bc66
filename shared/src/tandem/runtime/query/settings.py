"""Every tunable of the query runtime (env ``TANDEM_<NAME>``); see docs/query-service.md.

Names both sides agree on (collections, cache prefixes, change channels) are not settings:
they come from the apps' declarations (:mod:`tandem.app`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tandem.settings import EnvList, TandemSettings


class QueryServiceSettings(TandemSettings):
    http_port: int = Field(default=8002, ge=0, le=65535)
    cache_ttl_s: float = Field(default=300.0, gt=0)
    lru_size: int = Field(default=10_000, ge=1)
    """Documents per read model kept in this process's LRU."""
    lru_ttl_s: float = Field(default=30.0, gt=0)
    search_cache_size: int = Field(default=1_000, ge=0)
    """Search pages per read model kept until its next change notice (0: off; see
    tandem.runtime.query.search_cache)."""
    search_cache_ttl_s: float = Field(default=30.0, gt=0)
    redis_timeout_s: float = Field(default=0.5, gt=0)
    redis_retry_s: float = Field(default=2.0, gt=0)
    pointer_refresh_s: float = Field(default=5.0, gt=0)
    wait_ms_default: int = Field(default=2_000, ge=0)
    wait_ms_max: int = Field(default=10_000, ge=0)
    ws_queue_size: int = Field(default=256, ge=1)
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_auth_deadline_s: float = Field(default=5.0, gt=0)
    ws_ticket_ttl_s: int = Field(default=30, ge=1, le=300)
    ws_max_ids: int = Field(default=1_000, ge=1)
    ws_per_message_deflate: bool = False
    read_auth_required: bool = False
    cors_origins: EnvList = Field(default_factory=list)
    command_service_url: str = "http://127.0.0.1:8001"
    dev_token_ttl_s: int = Field(default=900, ge=1, le=86_400)

    @model_validator(mode="after")
    def _wait_bounds(self) -> QueryServiceSettings:
        if self.wait_ms_default > self.wait_ms_max:
            raise ValueError("wait_ms_default must not exceed wait_ms_max")
        return self
