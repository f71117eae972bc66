"""The ``Product`` aggregate: every rule about a product's life, and nothing about storage."""

from __future__ import annotations

from decimal import Decimal

from tandem.aggregate import AggregateRoot, applies
from tandem.errors import DomainError

from tandem_catalog.events import (
    AGGREGATE_TYPE,
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)

NAME_MAX = 200
PRICE_MAX = Decimal("1000000000")


def _check_name(name: str) -> str:
    stripped = name.strip()
    if not 1 <= len(stripped) <= NAME_MAX:
        raise DomainError(
            "invalid_name",
            f"a product name has 1 to {NAME_MAX} characters (not counting surrounding spaces)",
            details={"field": "name", "length": len(stripped)},
        )
    return stripped


def _check_price(price: Decimal) -> Decimal:
    if not price.is_finite() or price <= 0:
        raise DomainError(
            "invalid_price", "a price is greater than zero", details={"field": "price"}
        )
    if price > PRICE_MAX:
        raise DomainError(
            "invalid_price", f"a price is at most {PRICE_MAX}", details={"field": "price"}
        )
    exponent = price.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise DomainError(
            "invalid_price_precision",
            "a price has at most 2 decimal places",
            details={"field": "price"},
        )
    # 19.9 and 19.90 are the same price; store both as 19.90 so every reader sees 2 decimals.
    return price.quantize(Decimal("0.01"))


class Product(AggregateRoot):
    aggregate_type = AGGREGATE_TYPE

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.description = ""
        self.category = ""
        self.price = Decimal(0)
        self.discontinued = False

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        product_id: str,
        *,
        name: str,
        description: str,
        price: Decimal,
        category: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Product:
        product = cls(product_id)
        product._record(
            ProductCreated,
            name=_check_name(name),
            description=description,
            price=_check_price(price),
            category=category,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return product

    def update_details(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        """Records only the fields that change; a change to nothing records nothing."""
        self._ensure_active()
        new_name = _check_name(name) if name is not None else None
        changes = {
            "name": new_name if new_name != self.name else None,
            "description": description if description != self.description else None,
            "category": category if category is not None and category != self.category else None,
        }
        if all(value is None for value in changes.values()):
            return
        self._record(
            ProductDetailsUpdated,
            **changes,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def change_price(
        self, price: Decimal, *, correlation_id: str | None = None, causation_id: str | None = None
    ) -> None:
        self._ensure_active()
        new_price = _check_price(price)
        if new_price == self.price:
            return
        self._record(
            ProductPriceChanged,
            old_price=self.price,
            price=new_price,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def discontinue(
        self,
        reason: str | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        self._ensure_active()
        self._record(
            ProductDiscontinued,
            reason=reason,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def _ensure_active(self) -> None:
        if self.discontinued:
            raise DomainError(
                "product_discontinued",
                f"product {self.id!r} is discontinued and takes no changes",
                status_code=409,
                details={"id": self.id, "version": self.version},
            )

    # --- state ----------------------------------------------------------------------------

    @applies(ProductCreated)
    def _created(self, event: ProductCreated) -> None:
        self.name = event.name
        self.description = event.description
        self.price = event.price
        self.category = event.category

    @applies(ProductDetailsUpdated)
    def _details_updated(self, event: ProductDetailsUpdated) -> None:
        if event.name is not None:
            self.name = event.name
        if event.description is not None:
            self.description = event.description
        if event.category is not None:
            self.category = event.category

    @applies(ProductPriceChanged)
    def _price_changed(self, event: ProductPriceChanged) -> None:
        self.price = event.price

    @applies(ProductDiscontinued)
    def _discontinued(self, event: ProductDiscontinued) -> None:
        self.discontinued = True
