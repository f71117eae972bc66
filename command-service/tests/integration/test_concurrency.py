"""Optimistic concurrency through HTTP: one writer wins, the others get 409."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_50_concurrent_updates_with_the_same_expected_version(running: Any) -> None:
    created = await running.client.post(
        "/api/products",
        json={"name": "Desk", "price": "10.00", "category": "furniture"},
        headers=running.headers(),
    )
    product_id = created.json()["id"]

    async def rename(i: int) -> Any:
        return await running.client.patch(
            f"/api/products/{product_id}",
            json={"name": f"Desk {i}"},
            headers=running.headers(**{"If-Match": '"1"'}),
        )

    responses = await asyncio.gather(*(rename(i) for i in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 49
    conflicts = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {c["code"] for c in conflicts} == {"concurrency_conflict"}
    assert {c["details"]["current_version"] for c in conflicts} <= {1, 2}
    assert await running.store.current_version(product_id) == 2


async def test_if_match_mismatch_answers_the_current_version(running: Any) -> None:
    created = await running.client.post(
        "/api/products",
        json={"name": "Desk", "price": "10.00", "category": "furniture"},
        headers=running.headers(),
    )
    product_id = created.json()["id"]
    response = await running.client.post(
        f"/api/products/{product_id}/discontinue",
        json={},
        headers=running.headers(**{"If-Match": 'W/"7"'}),
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"]["current_version"] == 1
    # A body expected_version works as well.
    response = await running.client.post(
        f"/api/products/{product_id}/discontinue",
        json={"expected_version": 1, "reason": "recalled"},
        headers=running.headers(),
    )
    assert response.json() == {"id": product_id, "version": 2}
    again = await running.client.post(
        f"/api/products/{product_id}/price", json={"price": 3}, headers=running.headers()
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "product_discontinued"


async def test_if_match_and_body_version_that_differ_are_a_409_and_write_nothing(
    running: Any,
) -> None:
    created = await running.client.post(
        "/api/products",
        json={"name": "Desk", "price": "10.00", "category": "furniture"},
        headers=running.headers(),
    )
    product_id = created.json()["id"]
    response = await running.client.post(
        f"/api/products/{product_id}/price",
        json={"price": "12.00", "expected_version": 2},
        headers=running.headers(**{"If-Match": '"1"'}),
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflicting_preconditions"
    assert error["details"] == {"if_match": 1, "expected_version": 2}
    assert await running.store.current_version(product_id) == 1
    agreeing = await running.client.post(
        f"/api/products/{product_id}/price",
        json={"price": "12.00", "expected_version": 1},
        headers=running.headers(**{"If-Match": '"1"'}),
    )
    assert agreeing.status_code == 200
    assert agreeing.json()["version"] == 2
