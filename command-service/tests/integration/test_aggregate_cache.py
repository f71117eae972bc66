"""The aggregate cache across two replicas on one event store: a replica whose cached product
is stale never appends on it, and never answers from it what the current state would not."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def _price(app: Any, pid: str, price: str, **headers: str) -> Any:
    return await app.client.post(
        f"/api/products/{pid}/price", json={"price": price}, headers=app.headers(**headers)
    )


async def test_two_replicas_each_with_a_cache(replicas: Any) -> None:
    a, b = replicas
    created = await a.client.post(
        "/api/products",
        json={"name": "Lamp", "price": "10.00", "category": "lighting"},
        headers=a.headers(),
    )
    pid = created.json()["id"]
    assert (await _price(b, pid, "20.00")).json()["version"] == 2  # a's copy: stale

    # a decides on its stale copy, the append collides, a decides again on a fresh
    # read: the event says the price was 20, not 10.
    third = await _price(a, pid, "30.00")
    assert (third.status_code, third.json()["version"]) == (200, 3)
    events = await a.store.get_events(pid)
    assert [str(getattr(e, "old_price", "")) for e in events[1:]] == ["10.00", "20.00"]

    # b's copy is at 2 now: If-Match on the real version succeeds, a stale one is a 409
    # with the real version.
    assert (await _price(b, pid, "40.00", **{"If-Match": '"3"'})).status_code == 200
    conflict = await _price(a, pid, "50.00", **{"If-Match": '"3"'})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["details"]["current_version"] == 4

    # A no-op on a stale copy (a believes 30 at version 3... now refreshed to 4) and a
    # rejection on one are decided on the current state.
    await b.client.post(f"/api/products/{pid}/discontinue", headers=b.headers())
    same = await _price(a, pid, "40.00")
    assert same.status_code == 409
    assert same.json()["error"]["code"] == "product_discontinued"
    assert await a.store.current_version(pid) == 5
