"""Orders over HTTP, as a client sees them: commands on the command-service with their
machine-readable 409 and 422 codes, reads on the query-service (by id with ``min_version``,
search by customer and status with totals and pages, customer totals) and a WebSocket frame
on ``/ws/orders``. The catalog is served beside orders, as deployed.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import websockets
from orders_system import eventually, next_change, subscribed
from tandem.testing.system import RunningSystem
from tandem_orders.app import app as orders_app

pytestmark = pytest.mark.integration

ORDERS = orders_app.read_model("orders")
CUSTOMER_TOTALS = orders_app.read_model("customer_totals")
ROUTE = orders_app.aggregates[0].route


def line(product_id: str, quantity: int = 1, unit_price: str | float = "1.00") -> dict[str, Any]:
    return {"product_id": product_id, "quantity": quantity, "unit_price": unit_price}


async def post(
    http: httpx.AsyncClient,
    system: RunningSystem,
    path: str,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    return await http.post(f"{system.commands}{ROUTE}{path}", json=body, headers=headers)


async def place(
    http: httpx.AsyncClient, system: RunningSystem, customer: str, *lines: dict[str, Any]
) -> str:
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    body = {"order_id": order_id, "customer_id": customer, "currency": "EUR", "lines": list(lines)}
    placed = await post(http, system, "", body)
    assert (placed.status_code, placed.json()) == (201, {"id": order_id, "version": 1})
    return order_id


def refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def invalid(response: httpx.Response) -> tuple[int, list[Any]]:
    """A request refused by the command's schema: FastAPI's 422 names the fields."""
    return response.status_code, [err["loc"][1:] for err in response.json()["detail"]]


async def order_at(
    http: httpx.AsyncClient, system: RunningSystem, order_id: str, version: int
) -> dict[str, Any]:
    got = await http.get(
        f"{system.queries}{ORDERS.route}/{order_id}",
        params={"min_version": version, "wait_ms": 30_000},
    )
    assert got.status_code == 200, got.text
    document: dict[str, Any] = got.json()
    return document


async def test_an_order_is_placed_changed_submitted_and_shipped_under_its_rules(
    system: RunningSystem, http: httpx.AsyncClient, token: str
) -> None:
    customer = f"c-{uuid.uuid4().hex[:8]}"
    order = await place(http, system, customer, line("p-a", 2, "5.00"))
    added = await post(http, system, f"/{order}/lines", line("p-b", 1, "1.50"))
    assert (added.status_code, added.json()) == (200, {"id": order, "version": 2})
    assert refused(await post(http, system, f"/{order}/lines", line("p-a"))) == (
        409,
        "duplicate_line",
    )
    gone = await post(http, system, f"/{order}/lines/remove", {"product_id": "p-zz"})
    assert refused(gone) == (409, "line_not_found")
    removed = await post(http, system, f"/{order}/lines/remove", {"product_id": "p-b"})
    assert removed.json()["version"] == 3

    # If-Match names the version the client saw: an older one is a conflict, nothing recorded.
    stale = await post(
        http, system, f"/{order}/lines", line("p-c", 3, "2.25"), **{"If-Match": '"2"'}
    )
    assert refused(stale) == (409, "concurrency_conflict")
    assert stale.json()["error"]["details"]["current_version"] == 3
    fresh = await post(
        http, system, f"/{order}/lines", line("p-c", 3, "2.25"), **{"If-Match": '"3"'}
    )
    assert fresh.json()["version"] == 4

    assert refused(await post(http, system, f"/{order}/ship")) == (409, "order_not_submitted")
    submitted = await post(http, system, f"/{order}/submit")
    assert (submitted.status_code, submitted.json()["version"]) == (200, 5)
    assert refused(await post(http, system, f"/{order}/lines", line("p-d"))) == (
        409,
        "order_not_open",
    )
    assert refused(await post(http, system, f"/{order}/submit")) == (409, "order_not_open")

    document = await order_at(http, system, order, 5)
    assert {k: document[k] for k in ("id", "customer_id", "currency", "status", "total")} == {
        "id": order,
        "customer_id": customer,
        "currency": "EUR",
        "status": "submitted",
        "total": "16.75",  # 2 x 5.00 + 3 x 2.25
    }
    assert [(ln["product_id"], ln["quantity"], ln["unit_price"]) for ln in document["lines"]] == [
        ("p-a", 2, "5.00"),
        ("p-c", 3, "2.25"),
    ]

    async with websockets.connect(f"{system.ws}/ws/orders?ids={order}") as ws:
        await subscribed(ws, token)
        shipped = await post(http, system, f"/{order}/ship")
        assert shipped.json()["version"] == 6
        frame = await next_change(ws)
    assert (frame["read_model"], frame["id"], frame["version"]) == ("orders", order, 6)
    assert frame["changed_fields"] == {"status": "shipped"}
    cancelled = await post(http, system, f"/{order}/cancel", {"reason": "too late"})
    assert refused(cancelled) == (409, "order_shipped")
    assert cancelled.json()["error"]["details"]["status"] == "shipped"
    assert (await order_at(http, system, order, 6))["status"] == "shipped"


async def test_bad_input_is_refused_with_a_422_and_an_empty_order_is_not_submitted(
    system: RunningSystem, http: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4().hex[:8]}"

    def order(**fields: Any) -> dict[str, Any]:
        body = {"customer_id": customer, "currency": "EUR", "lines": [line("p-a")]}
        return {"order_id": f"o-{uuid.uuid4().hex[:10]}", **body, **fields}

    assert invalid(await post(http, system, "", order(currency="eur"))) == (422, [["currency"]])
    assert invalid(await post(http, system, "", order(lines=[]))) == (422, [["lines"]])
    zero = await post(http, system, "", order(lines=[line("p-a", 0)]))
    assert invalid(zero) == (422, [["lines", 0, "quantity"]])
    # A price that is no decimal number is a field error; a decimal string or a JSON number
    # with 3 decimals reaches the order's own rule.
    assert invalid(await post(http, system, "", order(lines=[line("p-a", 1, "1e3")]))) == (
        422,
        [["lines", 0, "unit_price"]],
    )
    assert refused(await post(http, system, "", order(lines=[line("p-a", 1, "1.005")]))) == (
        422,
        "invalid_price_precision",
    )
    assert refused(await post(http, system, "", order(lines=[line("p-a", 1, 1.005)]))) == (
        422,
        "invalid_price_precision",
    )
    assert refused(await post(http, system, "", order(lines=[line("p-a"), line("p-a")]))) == (
        422,
        "duplicate_line",
    )

    placed = await place(http, system, customer, line("p-a"))
    assert refused(await post(http, system, f"/{placed}/lines", line("p-b", 1, 0.999))) == (
        422,
        "invalid_price_precision",
    )
    assert invalid(await post(http, system, f"/{placed}/lines", line("p-b", 0))) == (
        422,
        [["quantity"]],
    )
    emptied = await post(http, system, f"/{placed}/lines/remove", {"product_id": "p-a"})
    assert emptied.json()["version"] == 2
    assert refused(await post(http, system, f"/{placed}/submit")) == (409, "empty_order")
    # Nothing refused was recorded: the read model is at the removal, open and empty.
    document = await order_at(http, system, placed, 2)
    assert (document["status"], document["lines"], document["total"]) == ("open", [], "0.00")
    found = await http.get(
        f"{system.queries}{ORDERS.route}/search", params={"customer_id": customer}
    )
    assert [item["id"] for item in found.json()["items"]] == [placed]


async def test_orders_are_searched_by_customer_and_status_and_totalled_per_customer(
    system: RunningSystem, http: httpx.AsyncClient
) -> None:
    customer, other = f"c-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    big = await place(http, system, customer, line("p-a", 2, "5.00"))
    small = await place(http, system, customer, line("p-b", 1, "3.00"))
    still_open = await place(http, system, customer, line("p-c", 1, "99.99"))
    elsewhere = await place(http, system, other, line("p-a", 1, "1.00"))
    for order_id in (big, small, elsewhere):
        assert (await post(http, system, f"/{order_id}/submit")).status_code == 200
    await order_at(http, system, still_open, 1)
    for order_id in (big, small, elsewhere):
        await order_at(http, system, order_id, 2)

    async def search(**params: Any) -> Any:
        page = await http.get(f"{system.queries}{ORDERS.route}/search", params=params)
        assert page.status_code == 200, page.text
        return page.json()

    everything = await search(customer_id=customer, sort="placed_at")
    assert [o["id"] for o in everything["items"]] == [big, small, still_open]
    assert (everything["total"], everything["pages"]) == (3, 1)
    submitted = await search(customer_id=customer, status="submitted", page_size=1)
    assert (submitted["total"], submitted["pages"], submitted["page_size"]) == (2, 2, 1)
    second = await search(customer_id=customer, status="submitted", page_size=1, page=2)
    assert {submitted["items"][0]["id"], second["items"][0]["id"]} == {big, small}
    assert [o["id"] for o in (await search(customer_id=customer, status="open"))["items"]] == [
        still_open
    ]
    unknown = await http.get(f"{system.queries}{ORDERS.route}/search", params={"status": "sent"})
    assert invalid(unknown) == (422, [["status"]])

    async def totals() -> dict[str, Any]:
        answer = await http.get(f"{system.queries}{CUSTOMER_TOTALS.route}")
        assert answer.status_code == 200, answer.text
        return {
            t["customer_id"]: t
            for t in answer.json()["items"]
            if t["customer_id"] in (customer, other)
        }

    async def totals_are(expected: dict[str, Any]) -> bool:
        return await totals() == expected

    after_submit = {
        customer: {"customer_id": customer, "submitted_orders": 2, "total": "13.00"},
        other: {"customer_id": other, "submitted_orders": 1, "total": "1.00"},
    }
    await eventually(lambda: totals_are(after_submit), f"totals {after_submit}")

    assert (await post(http, system, f"/{big}/cancel", {"reason": "changed my mind"})).json()[
        "version"
    ] == 3
    assert (await post(http, system, f"/{big}/cancel")).json()["error"]["code"] == "order_cancelled"
    assert (await order_at(http, system, big, 3))["status"] == "cancelled"
    after_cancel = {
        **after_submit,
        customer: {**after_submit[customer], "submitted_orders": 1, "total": "3.00"},
    }
    await eventually(lambda: totals_are(after_cancel), f"totals {after_cancel}")
    cancelled = await search(customer_id=customer, status="cancelled")
    assert [o["id"] for o in cancelled["items"]] == [big]
