"""Settings shared by every Tandem service.

Each service subclasses :class:`TandemSettings` and builds it once, in its composition root;
nothing else reads the environment. Every tunable number lives here or in a subclass, with a
default that works against the local stack (``deploy/local/stack.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class TandemSettings(BaseSettings):
    """Connection settings for Kafka, MongoDB (or FerretDB) and Redis."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore", frozen=True)

    environment: Environment = "development"
    kafka_bootstrap_servers: str = "localhost:9092"
    mongo_url: str = "mongodb://localhost:27017"
    mongo_write_db: str = "tandem_write"
    mongo_read_db: str = "tandem_read"
    redis_url: str = "redis://localhost:6379/0"
    partitions: int = Field(default=12, ge=1, le=1000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="after")
    def _databases_differ(self) -> TandemSettings:
        # The rebuild and the event store share nothing on purpose: a read-model database can be
        # dropped and replayed without touching the source of truth.
        if self.mongo_write_db == self.mongo_read_db:
            raise ValueError("mongo_write_db and mongo_read_db must differ")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
