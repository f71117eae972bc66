"""The read side's value types: read models, the two query shapes, and a page of results.

Read models are plain pydantic objects so the same instance can be stored in memory, in MongoDB,
in a JSON cache, and returned by FastAPI without a translation layer.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

SortDirection = Literal["asc", "desc"]
T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _plain(value: Any) -> Any:
    # BSON has no Decimal and JSON has no Decimal either: converting here, once, means the
    # in-memory repository, MongoDB and the Redis cache all hand back the same value (29.99).
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class ReadModelId(BaseModel):
    """Identifier of a read model; usually the aggregate id it is projected from."""

    model_config = ConfigDict(frozen=True)

    value: str = Field(min_length=1)

    def __str__(self) -> str:
        return self.value


class ReadModel(BaseModel):
    """A denormalised view, stored with the version of the last event it reflects.

    Subclass it per view (``class ProductReadModel(ReadModel): ...``). ``version`` is what makes
    writes idempotent: repositories refuse to replace a model with an older or equal version.
    ``search_fields`` names the ``data`` keys a free-text search looks in.
    """

    model_config = ConfigDict(validate_assignment=True)

    search_fields: ClassVar[tuple[str, ...]] = ("name", "description")

    id: ReadModelId
    version: int = Field(default=1, ge=0)
    created_at: datetime = Field(default_factory=_utcnow)
    updated_at: datetime = Field(default_factory=_utcnow)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data", mode="after")
    @classmethod
    def _storable_values(cls, value: dict[str, Any]) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(value)
        return plain

    @field_validator("created_at", "updated_at", mode="after")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # MongoDB returns naive datetimes (UTC); comparing naive with aware raises TypeError.
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ReadModelQuery(BaseModel):
    """Fetch one read model by id."""

    model_config = ConfigDict(frozen=True)

    id: ReadModelId
    model_type: type[ReadModel] | None = None


class SearchQuery(BaseModel):
    """Free text + field filters + sort + one page.

    ``filters`` maps a ``data`` key to a value (equality) or to operators
    (``{"price": {"gte": 1, "lte": 5}}``; ``eq ne gt gte lt lte in nin``, with or without ``$``).
    ``sort`` is a list of ``(field, "asc"|"desc")`` or a string like ``"-price,name"``.
    """

    model_config = ConfigDict(frozen=True)

    MAX_PAGE_SIZE: ClassVar[int] = 100

    search_term: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    sort: list[tuple[str, SortDirection]] = Field(default_factory=list)
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE)
    model_type: type[ReadModel] | None = None

    @field_validator("sort", mode="before")
    @classmethod
    def _parse_sort(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            parsed: list[tuple[str, str]] = []
            for part in (item.strip() for item in value.split(",")):
                if part:
                    desc = part.startswith("-")
                    parsed.append((part.lstrip("+-"), "desc" if desc else "asc"))
            return parsed
        return value

    @field_validator("filters", mode="after")
    @classmethod
    def _safe_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        # A "$where" key would let a caller inject operators into the database query.
        for key in value:
            if not key or key.startswith("$"):
                raise ValueError(f"invalid filter field {key!r}")
        return value


class PaginatedResult(BaseModel, Generic[T]):
    """One page of results plus what a client needs to ask for the next."""

    items: list[T]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    pages: int = Field(ge=0)

    @classmethod
    def create(cls, items: list[T], total: int, page: int, page_size: int) -> PaginatedResult[T]:
        return cls(
            items=items,
            total=total,
            page=page,
            page_size=page_size,
            pages=math.ceil(total / page_size) if total else 0,
        )
