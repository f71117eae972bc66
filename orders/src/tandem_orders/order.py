"""The ``Order`` aggregate: every rule of an order's life, nothing about storage.

An order is ``open`` while lines change, then ``submitted``, then ``shipped``; it can be
``cancelled`` until it ships. Rules about the current state are 409s (re-read and retry);
bad input is a 422.
"""

from __future__ import annotations

from decimal import Decimal

from tandem.aggregate import AggregateRoot, applies
from tandem.errors import DomainError

from tandem_orders.events import (
    AGGREGATE_TYPE,
    Line,
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)

CENT = Decimal("0.01")
PRICE_MAX = Decimal("1000000")


def money(value: Decimal, field: str = "unit_price") -> Decimal:
    """A price with at most two decimals, greater than zero; stored with exactly two."""
    if not value.is_finite() or value <= 0 or value > PRICE_MAX:
        raise DomainError(
            "invalid_price",
            f"a price is greater than 0 and at most {PRICE_MAX}",
            details={"field": field},
        )
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise DomainError(
            "invalid_price_precision", "a price has at most 2 decimals", details={"field": field}
        )
    return value.quantize(CENT)


def line(product_id: str, quantity: int, unit_price: Decimal) -> Line:
    if quantity < 1:
        raise DomainError(
            "invalid_quantity", "a quantity is at least 1", details={"field": "quantity"}
        )
    return Line(product_id=product_id, quantity=quantity, unit_price=money(unit_price))


class Order(AggregateRoot):
    aggregate_type = AGGREGATE_TYPE

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.customer_id = ""
        self.currency = ""
        self.lines: dict[str, Line] = {}
        self.status = "open"

    @property
    def total(self) -> Decimal:
        return sum((ln.unit_price * ln.quantity for ln in self.lines.values()), Decimal("0.00"))

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def place(cls, order_id: str, *, customer_id: str, currency: str, lines: list[Line]) -> Order:
        if not lines:
            raise DomainError(
                "empty_order",
                "an order is placed with at least one line",
                details={"field": "lines"},
            )
        products = [ln.product_id for ln in lines]
        if len(set(products)) != len(products):
            raise DomainError(
                "duplicate_line", "a product appears on one line only", details={"field": "lines"}
            )
        order = cls(order_id)
        checked = tuple(line(ln.product_id, ln.quantity, ln.unit_price) for ln in lines)
        order._record(OrderPlaced, customer_id=customer_id, currency=currency, lines=checked)
        return order

    def add_line(self, product_id: str, quantity: int, unit_price: Decimal) -> None:
        self._ensure_open()
        if product_id in self.lines:
            raise DomainError(
                "duplicate_line",
                f"product {product_id!r} is on the order already; remove it first",
                status_code=409,
                details={"product_id": product_id},
            )
        self._record(OrderLineAdded, line=line(product_id, quantity, unit_price))

    def remove_line(self, product_id: str) -> None:
        self._ensure_open()
        if product_id not in self.lines:
            raise DomainError(
                "line_not_found",
                f"product {product_id!r} is not on the order",
                status_code=409,
                details={"product_id": product_id},
            )
        self._record(OrderLineRemoved, product_id=product_id)

    def submit(self) -> None:
        self._ensure_open()
        if not self.lines:
            raise DomainError(
                "empty_order", "an order without lines cannot be submitted", status_code=409
            )
        self._record(OrderSubmitted, total=self.total)

    def ship(self) -> None:
        if self.status != "submitted":
            raise self._state_error("order_not_submitted", "only a submitted order ships")
        self._record(OrderShipped)

    def cancel(self, reason: str | None = None) -> None:
        if self.status == "shipped":
            raise self._state_error("order_shipped", "a shipped order cannot be cancelled")
        if self.status == "cancelled":
            raise self._state_error("order_cancelled", "the order is cancelled already")
        self._record(OrderCancelled, reason=reason)

    def _ensure_open(self) -> None:
        if self.status != "open":
            raise self._state_error("order_not_open", f"a {self.status} order takes no changes")

    def _state_error(self, code: str, message: str) -> DomainError:
        return DomainError(
            code,
            f"order {self.id!r}: {message}",
            status_code=409,
            details={"id": self.id, "status": self.status, "version": self.version},
        )

    # --- state ----------------------------------------------------------------------------

    @applies(OrderPlaced)
    def _placed(self, event: OrderPlaced) -> None:
        self.customer_id = event.customer_id
        self.currency = event.currency
        self.lines = {ln.product_id: ln for ln in event.lines}

    @applies(OrderLineAdded)
    def _line_added(self, event: OrderLineAdded) -> None:
        self.lines[event.line.product_id] = event.line

    @applies(OrderLineRemoved)
    def _line_removed(self, event: OrderLineRemoved) -> None:
        self.lines.pop(event.product_id, None)

    @applies(OrderSubmitted)
    def _submitted(self, event: OrderSubmitted) -> None:
        self.status = "submitted"

    @applies(OrderShipped)
    def _shipped(self, event: OrderShipped) -> None:
        self.status = "shipped"

    @applies(OrderCancelled)
    def _cancelled(self, event: OrderCancelled) -> None:
        self.status = "cancelled"
