"""The catalog's read shapes and its search query, validated from the query string.

``CQRSEndpointFactory.create_query_endpoint`` validates the request's parameters with these
pydantic models, so a bad parameter is a 422 with the field's location, never a 500.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tandem.app import SearchParams

Document = dict[str, Any]
SORTS = (
    "name",
    "-name",
    "price",
    "-price",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
)
SortOption = Literal[
    "name", "-name", "price", "-price", "created_at", "-created_at", "updated_at", "-updated_at"
]
Status = Literal["active", "discontinued"]


class Product(BaseModel):
    """A product as readers see it (the read model's API shape)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    description: str = ""
    price: float
    category: str
    status: Status
    version: int
    created_at: str | None = None
    updated_at: str | None = None


class SearchProducts(SearchParams):
    """Text in name and description, a category, a status and a price range, sorted."""

    operators = {"min_price": ("price", "gte"), "max_price": ("price", "lte")}
    q: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    status: Status | None = None
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    sort: SortOption = "name"


class CategoryStat(BaseModel):
    category: str
    active_count: int
    price_sum: float
    average_price: float | None
