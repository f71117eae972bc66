"""Commands on orders: their shape (types, lengths, at least one line). The rules live in
:class:`~tandem_orders.order.Order`, so they hold for every caller, not only for HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field
from tandem.app import AggregateCommand
from tandem.values import Money

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Price = Annotated[Decimal, Money(1_000_000)]  # the rules are the order's (order.checked)
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]


class LineIn(BaseModel):
    product_id: Id
    quantity: Quantity
    unit_price: Price


class PlaceOrder(AggregateCommand):
    order_id: Id
    customer_id: Id
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]


class AddOrderLine(AggregateCommand, LineIn):
    order_id: Id


class RemoveOrderLine(AggregateCommand):
    order_id: Id
    product_id: Id


class SubmitOrder(AggregateCommand):
    order_id: Id


class ShipOrder(AggregateCommand):
    order_id: Id


class CancelOrder(AggregateCommand):
    order_id: Id
    reason: Annotated[str | None, Field(max_length=1000)] = None
