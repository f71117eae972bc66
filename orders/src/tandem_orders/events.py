"""Order events: the facts the command-service records and the projector folds.

Money travels as decimal strings with two places (``"19.90"``), never as binary floats.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from tandem.events import DomainEvent


class Line(BaseModel, frozen=True):
    """One product on an order, at the unit price captured when it was added."""

    product_id: str
    quantity: int
    unit_price: Decimal


class OrderEvent(DomainEvent):
    aggregate_type: str = "Order"


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
