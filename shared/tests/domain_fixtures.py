"""A small Product aggregate shared by the aggregate, repository and handler tests."""

from __future__ import annotations

from decimal import Decimal

from tandem.aggregate import AggregateRoot, applies
from tandem.errors import DomainError
from tandem.events import DomainEvent


class ProductRegistered(DomainEvent):
    name: str
    price: Decimal


class ProductPriceChanged(DomainEvent):
    price: Decimal


class ProductDiscontinued(DomainEvent):
    pass


class Product(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.price = Decimal(0)
        self.discontinued = False
        self.price_history: list[Decimal] = []

    @classmethod
    def create(cls, product_id: str, name: str, price: Decimal) -> Product:
        if price <= 0:
            raise DomainError("invalid_price", "price must be positive")
        product = cls(product_id)
        product._record(ProductRegistered, name=name, price=price)
        return product

    def change_price(self, price: Decimal) -> None:
        if self.discontinued:
            raise DomainError("discontinued", "product is discontinued", status_code=409)
        if price <= 0:
            raise DomainError("invalid_price", "price must be positive")
        if price != self.price:
            self._record(ProductPriceChanged, price=price)

    def discontinue(self) -> None:
        if not self.discontinued:
            self._record(ProductDiscontinued)

    @applies(ProductRegistered)
    def _registered(self, event: ProductRegistered) -> None:
        self.name = event.name
        self.price = event.price

    @applies(ProductPriceChanged)
    def _price_changed(self, event: ProductPriceChanged) -> None:
        self.price_history.append(self.price)
        self.price = event.price

    @applies(ProductDiscontinued)
    def _discontinued(self, event: ProductDiscontinued) -> None:
        self.discontinued = True
