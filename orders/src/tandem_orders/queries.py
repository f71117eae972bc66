"""What readers ask of orders, and the shapes they get back (for the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tandem.messages import Query
from tandem.read_model.models import SearchQuery

Status = Literal["open", "submitted", "shipped", "cancelled"]


class SearchOrders(Query[Any]):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    sort: Literal["placed_at", "-placed_at", "updated_at", "-updated_at"] = "-placed_at"
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)

    def to_search(self) -> SearchQuery:
        filters = {"customer_id": self.customer_id, "status": self.status}
        return SearchQuery(
            filters={k: v for k, v in filters.items() if v},
            sort=self.sort,
            page=self.page,
            page_size=self.page_size,
        )


class OrderView(BaseModel):
    id: str
    customer_id: str
    currency: str
    lines: list[dict[str, Any]]
    line_count: int
    total: str
    status: Status
    version: int
    placed_at: str
    updated_at: str


class CustomerTotals(BaseModel):
    customer_id: str
    submitted_orders: int
    total: str
