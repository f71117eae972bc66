"""Commands on orders. The models check shape (types, lengths, at least one line); the rules
(prices with two decimals, quantities of at least 1, what each status allows) live in
:class:`~tandem_orders.order.Order`, so they hold for every caller."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from tandem.app import CommandAccepted
from tandem.messages import Command

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Price = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=20, gt=0)]
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
Version = Annotated[int | None, Field(ge=0)]


class LineIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: Id
    quantity: Quantity
    unit_price: Price


class _OrderCommand(Command[CommandAccepted]):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlaceOrder(_OrderCommand):
    order_id: Id
    customer_id: Id
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]


class AddOrderLine(_OrderCommand):
    order_id: Id
    product_id: Id
    quantity: Quantity
    unit_price: Price
    expected_version: Version = None


class RemoveOrderLine(_OrderCommand):
    order_id: Id
    product_id: Id
    expected_version: Version = None


class SubmitOrder(_OrderCommand):
    order_id: Id
    expected_version: Version = None


class ShipOrder(_OrderCommand):
    order_id: Id
    expected_version: Version = None


class CancelOrder(_OrderCommand):
    order_id: Id
    reason: Annotated[str | None, Field(max_length=1000)] = None
    expected_version: Version = None
