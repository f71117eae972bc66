"""Commands on products.

The models check *shape* (types, required fields, lengths that protect the service); the
business rules (price > 0 with two decimals, name 1-200 characters, no change after
discontinuation) live in :class:`~command_service.domain.product.Product`, so they hold for
every caller, not only for HTTP. ``expected_version`` is the version the client last saw
(from ``If-Match`` or the body); ``None`` means "whatever is current".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from tandem.messages import Command

ProductId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Bounds generous enough for any real value, tight enough that no input costs the service much.
Name = Annotated[str, Field(max_length=1000)]
Description = Annotated[str, Field(max_length=5000)]
Category = Annotated[str, Field(min_length=1, max_length=100)]
Price = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=20)]
ExpectedVersion = Annotated[int | None, Field(default=None, ge=0, le=2**53)]


class CommandAccepted(BaseModel):
    """A command's answer: the aggregate and its version after the command (DESIGN.md)."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int


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
