"""Commands on orders: their shape (types, lengths, at least one line). The rules live in
:class:`~tandem_orders.order.Order`, so they hold for every caller, not only for HTTP."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from tandem.app import AggregateCommand

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# 0.01 to 999999.99 with at most 2 decimals (no lookahead: fuzzers generate from it).
_PRICE = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,5}(\.[0-9]{1,2})?)$"


def _price_shape(value: object) -> object:
    """A price string is plain decimal notation, so the strings the schema publishes are the
    strings accepted (no exponent, sign, spaces or empty string)."""
    if isinstance(value, str) and re.fullmatch(_PRICE, value) is None:
        raise ValueError("a price is a decimal number such as 12.50")
    return value


Price = Annotated[
    Decimal,
    Field(gt=0, max_digits=20, allow_inf_nan=False),
    BeforeValidator(_price_shape),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 999999.99, "multipleOf": 0.01},
                {"type": "string", "pattern": _PRICE},
            ],
            "description": 'Above 0, at most 2 decimals: a JSON number or a string ("12.50")',
        }
    ),
]
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
