"""Settings shared by every Tandem service.

Each service subclasses :class:`TandemSettings` and builds it once, in its composition root;
nothing else reads the environment. Every tunable number lives here or in a subclass, with a
default that works against the local stack (``deploy/local/stack.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from tandem.app import App

Environment = Literal["development", "test", "production"]


def _env_list(value: Any) -> Any:
    # Compose files and ConfigMaps write lists the way people do (``a,b``, or empty for none),
    # not as JSON; pydantic-settings' default JSON decoding made those a start-up crash.
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


EnvList = Annotated[list[str], NoDecode, BeforeValidator(_env_list)]
"""A list setting read from one environment variable: comma-separated or a JSON list."""
DEV_JWT_SECRET = "tandem-dev-secret-change-me-0123456789"


class TandemSettings(BaseSettings):
    """Connection settings for Kafka, MongoDB and Redis."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore", frozen=True)

    environment: Environment = "development"
    apps: EnvList = Field(default_factory=list)
    """The apps this process serves (``TANDEM_APPS=package.module:app,...`` or entry point
    names of the ``tandem.apps`` group); see :mod:`tandem.app`."""
    kafka_bootstrap_servers: str = "localhost:9092"
    mongo_url: str = "mongodb://localhost:27017"
    mongo_write_db: str = "tandem_write"
    mongo_read_db: str = "tandem_read"
    redis_url: str = "redis://localhost:6379/0"
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    """Put before every topic derived from an app (tests give each run its own topics; a shared
    cluster can host several deployments). One setting for every service, so writers and
    readers always agree."""
    partitions: int = Field(default=12, ge=1, le=1000)
    """Partitions of a topic a service creates when it is missing (writer or reader first)."""
    topic_replication_factor: int = Field(default=1, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: a readable console format in development (``make run``), JSON lines elsewhere."""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)

    # Authentication (see tandem.auth). HS256 with a shared secret, or RS256 with a public key.
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_public_key: str | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_audience: str | None = "tandem"
    jwt_issuer: str | None = None
    auth_disabled: bool = False

    @model_validator(mode="after")
    def _databases_differ(self) -> TandemSettings:
        # The rebuild and the event store share nothing on purpose: a read-model database can be
        # dropped and replayed without touching the source of truth.
        if self.mongo_write_db == self.mongo_read_db:
            raise ValueError("mongo_write_db and mongo_read_db must differ")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> TandemSettings:
        # Development conveniences must never leave development by omission: not into
        # production, and not into a test environment that may be reachable (a shared CI
        # stack, a staging cluster), where a secret published in this file signs any token.
        if self.environment == "development":
            return self
        if self.auth_disabled:
            raise ValueError(
                f"auth_disabled is only allowed in development (environment={self.environment})"
            )
        if self.jwt_algorithm == "HS256" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            raise ValueError(
                "set TANDEM_JWT_SECRET: the development secret is refused outside development "
                f"(environment={self.environment})"
            )
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise ValueError("TANDEM_JWT_PUBLIC_KEY is required with RS256")
        return self

    def load_apps(self) -> list[App]:
        """The declared apps, imported and checked against each other (clear error if none)."""
        from tandem.app import load_apps

        return load_apps(self.apps)

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format == "auto":
            return "console" if self.environment == "development" else "json"
        return self.log_format

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
