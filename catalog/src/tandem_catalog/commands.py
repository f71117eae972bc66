"""Commands on products.

The models check *shape* (types, required fields, lengths that protect the service); the
business rules (price > 0 with two decimals, name 1-200 characters, no change after
discontinuation) live in :class:`~tandem_catalog.product.Product`, so they hold for
every caller, not only for HTTP. ``expected_version`` is the version the client last saw
(from ``If-Match`` or the body); ``None`` means "whatever is current".

The *published* JSON schema of a field is the set the service accepts end to end — shape and
business rule together — so a client (or a fuzzer) that follows ``/openapi.json`` is never
refused: a name's schema spells "1 to 200 characters after trimming" as a pattern, a price's
the range and the two decimals. Input outside the schema still gets a 422, but one that
breaks a business rule keeps its machine-readable code (``invalid_name``, ``invalid_price``,
``invalid_price_precision``) because the aggregate, not the model, refuses it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from tandem.app import CommandAccepted
from tandem.messages import Command
from tandem.values import Money

from tandem_catalog.product import NAME_MAX, PRICE_MAX

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
ProductId = Annotated[str, Field(min_length=1, max_length=64, pattern=PRODUCT_ID_PATTERN)]

# Bounds generous enough for any real value, tight enough that no input costs the service much.
NAME_SHAPE_MAX = 1000
# Exactly the characters ``str.strip()`` removes (``\s`` differs between Python and the
# ECMA-262 regexes JSON Schema uses, so the class is spelled out).
_SPACE = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())
NAME_PATTERN = rf"^[{_SPACE}]*[^{_SPACE}](?:[\s\S]{{0,{NAME_MAX - 2}}}[^{_SPACE}])?[{_SPACE}]*$"
"""A name with 1 to ``NAME_MAX`` characters once surrounding spaces are trimmed."""
Name = Annotated[
    str,
    Field(max_length=NAME_SHAPE_MAX),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": NAME_SHAPE_MAX,
            "pattern": NAME_PATTERN,
            "description": f"1 to {NAME_MAX} characters, not counting surrounding spaces "
            "(which are trimmed)",
        }
    ),
]
Description = Annotated[str, Field(max_length=5000)]
Category = Annotated[str, Field(min_length=1, max_length=100)]

Price = Annotated[Decimal, Money(int(PRICE_MAX))]


def _json_integer(value: Any) -> Any:
    """JSON Schema's ``integer``: ``3`` and ``3.0`` (a number without a fraction), not ``"3"``,
    ``3.5`` or ``true``, as the published schema says."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a version is a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("a version is a JSON integer")
        return int(value)
    return value


ExpectedVersion = Annotated[
    Annotated[int, Field(ge=0, le=2**53)] | None, BeforeValidator(_json_integer)
]


class _ProductCommand(Command[CommandAccepted]):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateProduct(_ProductCommand):
    product_id: ProductId
    name: Name
    description: Description = ""
    price: Price
    category: Category


class UpdateProductDetails(_ProductCommand):
    """Changes any of name, description, category; fields left out stay as they are."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"type": "string"}}}
                for field in ("name", "description", "category")
            ]
        }
    )

    product_id: ProductId
    name: Name | None = None
    description: Description | None = None
    category: Category | None = None
    expected_version: ExpectedVersion = None

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateProductDetails:
        if self.name is None and self.description is None and self.category is None:
            raise ValueError("give at least one of name, description, category")
        return self


class ChangeProductPrice(_ProductCommand):
    product_id: ProductId
    price: Price
    expected_version: ExpectedVersion = None


class DiscontinueProduct(_ProductCommand):
    product_id: ProductId
    reason: Annotated[str | None, Field(max_length=1000)] = None
    expected_version: ExpectedVersion = None


ProductCommand = CreateProduct | UpdateProductDetails | ChangeProductPrice | DiscontinueProduct
