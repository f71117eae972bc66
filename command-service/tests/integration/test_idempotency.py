"""Idempotency-Key: a replay returns the first response and appends nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

pytestmark = pytest.mark.integration

BODY = {"name": "Desk", "price": "10.00", "category": "furniture"}


async def _commits(running: Any) -> int:
    service = running.service
    collection = service.mongo[running.settings.mongo_write_db][running.events_collection]
    return int(await collection.count_documents({}))


async def test_replay_returns_the_first_response_and_appends_nothing(running: Any) -> None:
    headers = running.headers(**{"Idempotency-Key": "key-1"})
    first = await running.client.post("/api/products", json=BODY, headers=headers)
    assert first.status_code == 201
    replay = await running.client.post(
        "/api/products",
        content=b'{"category":"furniture", "name":"Desk","price":"10.00"}',
        headers={**headers, "content-type": "application/json"},
    )
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["location"] == first.headers["location"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _commits(running) == 1

    product_id = first.json()["id"]
    update_headers = running.headers(**{"Idempotency-Key": "key-2", "If-Match": "1"})
    path = f"/api/products/{product_id}/price"
    one = await running.client.post(path, json={"price": "11"}, headers=update_headers)
    two = await running.client.post(path, json={"price": "11"}, headers=update_headers)
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json() == {"id": product_id, "version": 2}
    assert await _commits(running) == 2


async def test_same_key_with_another_body_is_422(running: Any) -> None:
    headers = running.headers(**{"Idempotency-Key": "key-x"})
    assert (
        await running.client.post("/api/products", json=BODY, headers=headers)
    ).status_code == 201
    other = await running.client.post(
        "/api/products", json={**BODY, "price": "99.00"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await _commits(running) == 1


async def test_concurrent_requests_with_one_key_append_once(running: Any) -> None:
    headers = running.headers(**{"Idempotency-Key": "key-c"})
    responses = await asyncio.gather(
        *(running.client.post("/api/products", json=BODY, headers=headers) for _ in range(10))
    )
    statuses = {r.status_code for r in responses}
    assert statuses <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await _commits(running) == 1


async def test_a_duplicate_while_the_first_is_in_flight_is_409_in_progress(
    running: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request is held inside the event store's append, so the duplicate surely
    arrives while the key is claimed and not yet answered."""
    store = running.service.writer().event_store
    append = store.append
    entered, release = asyncio.Event(), asyncio.Event()

    async def held_append(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await append(*args, **kwargs)

    monkeypatch.setattr(store, "append", held_append)
    headers = running.headers(**{"Idempotency-Key": "key-held"})
    first = asyncio.create_task(running.client.post("/api/products", json=BODY, headers=headers))
    await asyncio.wait_for(entered.wait(), 10)
    duplicate = await running.client.post("/api/products", json=BODY, headers=headers)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_progress"
    assert "retry-after" in duplicate.headers
    assert not first.done()

    release.set()
    answered = await asyncio.wait_for(first, 10)
    assert answered.status_code == 201
    replay = await running.client.post("/api/products", json=BODY, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == answered.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _commits(running) == 1


async def test_a_5xx_answer_is_not_remembered_and_the_retry_appends_once(
    running: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.service.writer().event_store
    append = store.append
    calls: list[int] = []

    async def down_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ServerSelectionTimeoutError("the event store is gone for a moment")
        return await append(*args, **kwargs)

    monkeypatch.setattr(store, "append", down_once)
    headers = running.headers(**{"Idempotency-Key": "key-outage"})
    outage = await running.client.post("/api/products", json=BODY, headers=headers)
    assert outage.status_code == 503, outage.text
    assert outage.json()["error"]["code"] == "event_store_unavailable"
    assert await _commits(running) == 0

    retry = await running.client.post("/api/products", json=BODY, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    again = await running.client.post("/api/products", json=BODY, headers=headers)
    assert again.status_code == 201
    assert again.json() == retry.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(calls) == 2
    assert await _commits(running) == 1


async def test_keys_are_scoped_per_caller(running: Any) -> None:
    from tandem.auth import issue_token

    other = issue_token(running.settings, "someone-else", ["products:write"], 600)
    key = {"Idempotency-Key": "shared"}
    a = await running.client.post("/api/products", json=BODY, headers=running.headers(**key))
    b = await running.client.post(
        "/api/products", json=BODY, headers={"Authorization": f"Bearer {other}", **key}
    )
    assert a.json()["id"] != b.json()["id"]
    assert await _commits(running) == 2


async def test_keys_expire(app_factory: Any) -> None:
    async with app_factory(idempotency_ttl_s=1) as running:
        headers = running.headers(**{"Idempotency-Key": "short-lived"})
        first = await running.client.post("/api/products", json=BODY, headers=headers)
        await asyncio.sleep(1.2)
        # Expired: the key is free again, for any body.
        second = await running.client.post(
            "/api/products", json={**BODY, "price": "12.00"}, headers=headers
        )
        assert second.status_code == 201
        assert second.json()["id"] != first.json()["id"]
        await asyncio.sleep(1.2)
        assert await running.service.idempotency.purge_expired() == 1


async def test_invalid_key_is_422(running: Any) -> None:
    response = await running.client.post(
        "/api/products", json=BODY, headers=running.headers(**{"Idempotency-Key": "x" * 300})
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


async def test_unknown_method_or_path_stays_405_or_404_whatever_key_it_carries(
    running: Any,
) -> None:
    """A key binds only requests the router hands to an endpoint, so reusing one on a method
    or path that does not exist never turns the router's answer into a replay or a 422."""
    headers = running.headers(**{"Idempotency-Key": "key-r"})
    assert (
        await running.client.post("/api/products", json=BODY, headers=headers)
    ).status_code == 201
    put = await running.client.put("/api/products", json=BODY, headers=headers)
    assert put.status_code == 405
    post_on_item = await running.client.post("/api/products/p-1", json=BODY, headers=headers)
    assert post_on_item.status_code == 405
    missing = await running.client.post("/api/nothing-here", json=BODY, headers=headers)
    assert missing.status_code == 404
    assert await _commits(running) == 1
