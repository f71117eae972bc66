"""Order events: the facts the command-service records and the projector folds.

Money travels as decimal strings with two places (``"19.90"``), never as binary floats.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from tandem.events import DomainEvent

AGGREGATE_TYPE = "Order"


class Line(BaseModel):
    """One product on an order, at the unit price captured when it was added."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    quantity: int
    unit_price: Decimal


class OrderEvent(DomainEvent):
    aggregate_type: str = AGGREGATE_TYPE


class OrderPlaced(OrderEvent):
    customer_id: str
    currency: str
    lines: tuple[Line, ...]


class OrderLineAdded(OrderEvent):
    line: Line


class OrderLineRemoved(OrderEvent):
    product_id: str


class OrderSubmitted(OrderEvent):
    total: Decimal


class OrderShipped(OrderEvent):
    pass


class OrderCancelled(OrderEvent):
    reason: str | None = None


EVENTS = (
    OrderPlaced,
    OrderLineAdded,
    OrderLineRemoved,
    OrderSubmitted,
    OrderShipped,
    OrderCancelled,
)
