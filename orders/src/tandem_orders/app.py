"""Orders, declared for the runtime (``TANDEM_APPS=tandem_orders.app:app``)."""

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
from tandem_orders.queries import CustomerTotals, OrderView, SearchOrders, to_search


def _place(c: PlaceOrder) -> Order:
    lines = [Line(**ln.model_dump()) for ln in c.lines]
    return Order.place(c.order_id, customer_id=c.customer_id, currency=c.currency, lines=lines)


app = App(
    name="orders",
    title="Orders",
    aggregates=[
        AggregateSpec(
            Order,
            events=EVENTS,
            route="/api/orders",
            id_field="order_id",
            write_scope="orders:write",
            commands=[
                CommandRoute(PlaceOrder, "POST", create=_place, summary="Place an order"),
                CommandRoute(
                    AddOrderLine,
                    "POST",
                    "/{id}/lines",
                    decide=lambda o, c: o.add_line(c.product_id, c.quantity, c.unit_price),
                    summary="Add a line",
                ),
                CommandRoute(
                    RemoveOrderLine,
                    "POST",
                    "/{id}/lines/remove",
                    decide=lambda o, c: o.remove_line(c.product_id),
                    summary="Remove a product's line",
                ),
                CommandRoute(
                    SubmitOrder,
                    "POST",
                    "/{id}/submit",
                    decide=lambda o, c: o.submit(),
                    summary="Submit the order",
                    body_required=False,
                ),
                CommandRoute(
                    ShipOrder,
                    "POST",
                    "/{id}/ship",
                    decide=lambda o, c: o.ship(),
                    summary="Ship a submitted order",
                    body_required=False,
                ),
                CommandRoute(
                    CancelOrder,
                    "POST",
                    "/{id}/cancel",
                    decide=lambda o, c: o.cancel(c.reason),
                    summary="Cancel the order (not after shipping)",
                    body_required=False,
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
            read_scope="orders:read",
            live=True,
            indexes=[
                Index([("customer_id", 1), ("placed_at", -1)]),
                Index([("status", 1), ("placed_at", -1)]),
                Index([("updated_at", -1)]),
            ],
            search=Search(SearchOrders, to_search),
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
