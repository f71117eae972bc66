"""The ``Order`` aggregate: every rule of an order's life, nothing about storage.

An order is ``open`` while its lines change, then ``submitted``, then ``shipped``; it can be
``cancelled`` until it ships. A rule about the current state is a 409 (re-read and retry),
bad input a 422.
"""

from __future__ import annotations

from decimal import Decimal

from tandem.aggregate import AggregateRoot, applies
from tandem.errors import DomainError

from tandem_orders.events import (
    Line,
    OrderCancelled,
    OrderLineAdded,
    OrderLineRemoved,
    OrderPlaced,
    OrderShipped,
    OrderSubmitted,
)

QUANTITY, PRICE = {"field": "quantity"}, {"field": "unit_price"}


def checked(line: Line) -> Line:
    """A quantity of at least 1 and a price above 0 with at most two decimals (kept as 2)."""
    if line.quantity < 1:
        raise DomainError("invalid_quantity", "a quantity is at least 1", details=QUANTITY)
    price = line.unit_price
    if not price.is_finite() or not 0 < price <= 1_000_000:
        raise DomainError("invalid_price", "a price is above 0 and at most 1000000", details=PRICE)
    if price != price.quantize(Decimal("0.01")):
        raise DomainError("invalid_price_precision", "at most 2 decimals", details=PRICE)
    return line.model_copy(update={"unit_price": price.quantize(Decimal("0.01"))})


class Order(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.lines: dict[str, Line] = {}
        self.status = "open"

    @property
    def total(self) -> Decimal:
        return sum((ln.unit_price * ln.quantity for ln in self.lines.values()), Decimal("0.00"))

    @classmethod
    def place(cls, order_id: str, customer_id: str, currency: str, lines: list[Line]) -> Order:
        if not lines:
            raise DomainError("empty_order", "an order is placed with at least one line")
        if len({ln.product_id for ln in lines}) != len(lines):
            raise DomainError("duplicate_line", "a product appears on one line only")
        order = cls(order_id)
        lines_ = tuple(checked(ln) for ln in lines)
        order._record(OrderPlaced, customer_id=customer_id, currency=currency, lines=lines_)
        return order

    def add_line(self, line: Line) -> None:
        self._require("open")
        if line.product_id in self.lines:
            raise self._conflict("duplicate_line", f"{line.product_id} is on the order already")
        self._record(OrderLineAdded, line=checked(line))

    def remove_line(self, product_id: str) -> None:
        self._require("open")
        if product_id not in self.lines:
            raise self._conflict("line_not_found", f"{product_id} is not on the order")
        self._record(OrderLineRemoved, product_id=product_id)

    def submit(self) -> None:
        self._require("open")
        if not self.lines:
            raise self._conflict("empty_order", "an order without lines cannot be submitted")
        self._record(OrderSubmitted, total=self.total)

    def ship(self) -> None:
        if self.status != "submitted":
            raise self._conflict("order_not_submitted", "only a submitted order ships")
        self._record(OrderShipped)

    def cancel(self, reason: str | None = None) -> None:
        if self.status in ("shipped", "cancelled"):
            raise self._conflict(f"order_{self.status}", f"the order is {self.status}")
        self._record(OrderCancelled, reason=reason)

    def _require(self, status: str) -> None:
        if self.status != status:
            raise self._conflict("order_not_open", f"a {self.status} order takes no changes")

    def _conflict(self, code: str, message: str) -> DomainError:
        details = {"id": self.id, "status": self.status, "version": self.version}
        return DomainError(code, f"order {self.id}: {message}", status_code=409, details=details)

    @applies(OrderPlaced, OrderLineAdded)
    def _lines_added(self, event: OrderPlaced | OrderLineAdded) -> None:
        added = event.lines if isinstance(event, OrderPlaced) else (event.line,)
        self.lines.update({ln.product_id: ln for ln in added})

    @applies(OrderLineRemoved)
    def _line_removed(self, event: OrderLineRemoved) -> None:
        del self.lines[event.product_id]

    @applies(OrderSubmitted, OrderShipped, OrderCancelled)
    def _status_changed(self, event: OrderSubmitted | OrderShipped | OrderCancelled) -> None:
        self.status = {OrderSubmitted: "submitted", OrderShipped: "shipped"}.get(
            type(event), "cancelled"
        )
