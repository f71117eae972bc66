"""HTTP clients for the two services, recording every command in a :class:`Ledger`.

A transport error (timeout, connection refused or reset) is recorded as an *unknown* outcome:
the command may or may not have been committed, so it is neither counted as lost nor as
accepted; the fold check still holds it to "at most once".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from tandem_e2e.ledger import CommandRecord, Ledger


@dataclass(frozen=True)
class Outcome:
    status: int | None
    body: Any
    headers: dict[str, str]
    product_id: str | None
    version: int | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _version_of(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("version"), int):
        return int(body["version"])
    return None


class CommandClient:
    """Speaks the command-service's API (docs: command-service OpenAPI at ``/docs``)."""

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

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(
        self,
        kind: str,
        method: str,
        path: str,
        body: dict[str, Any],
        product_id: str | None,
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
                CommandRecord(kind, product_id, None, None, self.name, idempotency_key, replay)
            )
            return Outcome(None, None, {}, product_id, None)
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text
        if product_id is None and isinstance(payload, dict) and payload.get("id"):
            product_id = str(payload["id"])
        version = _version_of(payload) if response.is_success else None
        self.ledger.add(
            CommandRecord(
                kind, product_id, response.status_code, version, self.name, idempotency_key, replay
            )
        )
        return Outcome(response.status_code, payload, dict(response.headers), product_id, version)

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
            "create", "POST", "/api/products", body, product_id, None, idempotency_key, replay
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
            f"/api/products/{product_id}",
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
            f"/api/products/{product_id}/price",
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
            f"/api/products/{product_id}/discontinue",
            body,
            product_id,
            expected_version,
            idempotency_key,
        )


class QueryClient:
    def __init__(self, base_url: str, token: str, timeout: float = 15) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(
        self, product_id: str, min_version: int | None = None, wait_ms: int | None = None
    ) -> httpx.Response:
        params: dict[str, int] = {}
        if min_version is not None:
            params["min_version"] = min_version
        if wait_ms is not None:
            params["wait_ms"] = wait_ms
        return await self.http.get(f"/api/products/{product_id}", params=params)

    async def search(self, **params: Any) -> httpx.Response:
        return await self.http.get("/api/products/search", params=params)

    async def stats(self) -> httpx.Response:
        return await self.http.get("/api/categories/stats")
