"""Orders, declared for the runtime: ``TANDEM_APPS=tandem_orders.app:app``."""

from __future__ import annotations

from tandem.app import (
    AggregateSpec,
    App,
    CommandRoute,
    FoldProjection,
    Index,
    ReadModelSpec,
    Search,
    TotalsProjection,
)

from tandem_orders.commands import (
    AddOrderLine,
    CancelOrder,
    PlaceOrder,
    RemoveOrderLine,
    ShipOrder,
    SubmitOrder,
)
from tandem_orders.events import EVENTS, Line
from tandem_orders.order import Order
from tandem_orders.projections import customer_share, customer_view, fold
from tandem_orders.queries import CustomerTotals, OrderView, SearchOrders


def place(c: PlaceOrder) -> Order:
    lines = [Line(**ln.model_dump()) for ln in c.lines]
    return Order.place(c.order_id, c.customer_id, c.currency, lines)


def add_line(order: Order, c: AddOrderLine) -> None:
    order.add_line(Line(product_id=c.product_id, quantity=c.quantity, unit_price=c.unit_price))


app = App(
    name="orders",
    title="Orders",
    aggregates=[
        AggregateSpec(
            Order,
            events=EVENTS,
            route="/api/orders",
            id_field="order_id",
            commands=[
                CommandRoute(PlaceOrder, "POST", create=place, summary="Place an order"),
                CommandRoute(AddOrderLine, "POST", "/{id}/lines", decide=add_line),
                CommandRoute(
                    RemoveOrderLine,
                    "POST",
                    "/{id}/lines/remove",
                    decide=lambda o, c: o.remove_line(c.product_id),
                ),
                CommandRoute(SubmitOrder, "POST", "/{id}/submit", decide=lambda o, c: o.submit()),
                CommandRoute(ShipOrder, "POST", "/{id}/ship", decide=lambda o, c: o.ship()),
                CommandRoute(
                    CancelOrder, "POST", "/{id}/cancel", decide=lambda o, c: o.cancel(c.reason)
                ),
            ],
        )
    ],
    read_models=[
        ReadModelSpec(
            "orders",
            FoldProjection(fold, EVENTS),
            route="/api/orders",
            document=OrderView,
            live=True,
            indexes=[Index([("customer_id", 1), ("placed_at", -1)]), Index([("status", 1)])],
            search=Search(SearchOrders),
        ),
        ReadModelSpec(
            "customer_totals",
            TotalsProjection("orders", customer_share, customer_view),
            route="/api/customers/totals",
            document=CustomerTotals,
            read_scope="orders:read",
        ),
    ],
)
