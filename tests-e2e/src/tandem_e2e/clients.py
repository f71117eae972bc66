"""HTTP clients for the two services and both apps, recording every command in a :class:`Ledger`.

A transport error (timeout, connection refused or reset) is recorded as an *unknown* outcome:
the command may or may not have been committed, so it is neither counted as lost nor as
accepted; the fold check still holds it to "at most once". Routes come from the apps'
declarations (``tandem_catalog.app.app``, ``tandem_orders.app.app``), as the services derive
them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from tandem.app import App
from tandem_catalog.app import app as catalog_app
from tandem_orders.app import app as orders_app

from tandem_e2e.ledger import CommandRecord, Ledger


@dataclass(frozen=True)
class Outcome:
    status: int | None
    body: Any
    headers: dict[str, str]
    aggregate_id: str | None
    version: int | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _version_of(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("version"), int):
        return int(body["version"])
    return None


class _Commands:
    """The command-service's API for one app (docs: command-service OpenAPI at ``/docs``)."""

    app: App

    def __init__(
        self, base_url: str, token: str, ledger: Ledger, name: str = "client", timeout: float = 15
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self.ledger = ledger
        self.name = name
        self.route = self.app.aggregates[0].route

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(
        self,
        kind: str,
        method: str,
        path: str,
        body: dict[str, Any],
        aggregate_id: str | None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        replay: bool = False,
    ) -> Outcome:
        headers: dict[str, str] = {"X-Correlation-ID": f"e2e-{uuid.uuid4().hex[:12]}"}
        if expected_version is not None:
            headers["If-Match"] = f'"{expected_version}"'
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = await self.http.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            self.ledger.add(
                CommandRecord(
                    kind,
                    aggregate_id,
                    None,
                    None,
                    self.name,
                    idempotency_key,
                    replay,
                    self.app.name,
                )
            )
            return Outcome(None, None, {}, aggregate_id, None)
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text
        if aggregate_id is None and isinstance(payload, dict) and payload.get("id"):
            aggregate_id = str(payload["id"])
        version = _version_of(payload) if response.is_success else None
        self.ledger.add(
            CommandRecord(
                kind,
                aggregate_id,
                response.status_code,
                version,
                self.name,
                idempotency_key,
                replay,
                self.app.name,
            )
        )
        return Outcome(response.status_code, payload, dict(response.headers), aggregate_id, version)


class CommandClient(_Commands):
    """The catalog's commands."""

    app = catalog_app

    async def create(
        self,
        name: str,
        price: Decimal | str,
        category: str,
        description: str = "",
        *,
        product_id: str | None = None,
        idempotency_key: str | None = None,
        replay: bool = False,
    ) -> Outcome:
        """``product_id`` lets a scenario know the id even when no response comes back."""
        body = {
            "name": name,
            "description": description,
            "price": str(price),
            "category": category,
        }
        if product_id is not None:
            body["product_id"] = product_id
        return await self._send(
            "create", "POST", self.route, body, product_id, None, idempotency_key, replay
        )

    async def update(
        self,
        product_id: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: str,
    ) -> Outcome:
        return await self._send(
            "update",
            "PATCH",
            f"{self.route}/{product_id}",
            dict(fields),
            product_id,
            expected_version,
            idempotency_key,
        )

    async def change_price(
        self,
        product_id: str,
        price: Decimal | str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        replay: bool = False,
    ) -> Outcome:
        return await self._send(
            "price",
            "POST",
            f"{self.route}/{product_id}/price",
            {"price": str(price)},
            product_id,
            expected_version,
            idempotency_key,
            replay,
        )

    async def discontinue(
        self,
        product_id: str,
        expected_version: int | None = None,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        body: dict[str, Any] = {"reason": reason} if reason else {}
        return await self._send(
            "discontinue",
            "POST",
            f"{self.route}/{product_id}/discontinue",
            body,
            product_id,
            expected_version,
            idempotency_key,
        )


class OrderClient(_Commands):
    """The orders app's commands; ``order_id`` is the client's, so an unknown outcome still
    names the order."""

    app = orders_app

    async def place(
        self,
        order_id: str,
        customer_id: str,
        lines: list[tuple[str, int, Decimal]],
        currency: str = "EUR",
    ) -> Outcome:
        body = {
            "order_id": order_id,
            "customer_id": customer_id,
            "currency": currency,
            "lines": [{"product_id": p, "quantity": q, "unit_price": str(u)} for p, q, u in lines],
        }
        return await self._send("place", "POST", self.route, body, order_id)

    async def add_line(
        self,
        order_id: str,
        product_id: str,
        quantity: int,
        unit_price: Decimal,
        expected_version: int | None = None,
    ) -> Outcome:
        body = {"product_id": product_id, "quantity": quantity, "unit_price": str(unit_price)}
        path = f"{self.route}/{order_id}/lines"
        return await self._send("add_line", "POST", path, body, order_id, expected_version)

    async def remove_line(
        self, order_id: str, product_id: str, expected_version: int | None = None
    ) -> Outcome:
        path = f"{self.route}/{order_id}/lines/remove"
        body = {"product_id": product_id}
        return await self._send("remove_line", "POST", path, body, order_id, expected_version)

    async def transition(
        self, order_id: str, kind: str, expected_version: int | None = None
    ) -> Outcome:
        """``submit``, ``ship`` or ``cancel``."""
        path = f"{self.route}/{order_id}/{kind}"
        return await self._send(kind, "POST", path, {}, order_id, expected_version)


class QueryClient:
    """The query-service's reads of one app's fold read model and its totals."""

    def __init__(
        self, base_url: str, token: str, app: App = catalog_app, timeout: float = 15
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        folds = [rm for rm in app.read_models if rm.is_fold]
        self.route = folds[0].route
        self.totals_route = next(rm.route for rm in app.read_models if not rm.is_fold)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(
        self, document_id: str, min_version: int | None = None, wait_ms: int | None = None
    ) -> httpx.Response:
        params: dict[str, int] = {}
        if min_version is not None:
            params["min_version"] = min_version
        if wait_ms is not None:
            params["wait_ms"] = wait_ms
        return await self.http.get(f"{self.route}/{document_id}", params=params)

    async def search(self, **params: Any) -> httpx.Response:
        return await self.http.get(f"{self.route}/search", params=params)

    async def stats(self) -> httpx.Response:
        """The totals read model: ``{"items": [...]}``."""
        return await self.http.get(self.totals_route)
