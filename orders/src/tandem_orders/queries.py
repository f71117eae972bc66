"""What readers ask of orders, and the shapes they get back (for the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from tandem.app import SearchParams

Status = Literal["open", "submitted", "shipped", "cancelled"]


class SearchOrders(SearchParams):
    customer_id: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    sort: Literal["placed_at", "-placed_at", "updated_at", "-updated_at"] = "-placed_at"


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
