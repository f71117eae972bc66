"""``/ws/products`` with real WebSocket clients against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.auth import issue_token
from tandem.runtime.query.testing import running
from tandem_catalog.testing import PRODUCTS, notice, product_doc
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration


def ws_url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + "/ws/products" + (f"?{query}" if query else "")


async def open_client(base: str, token: str, **subscription: Any) -> ClientConnection:
    ws = await connect(ws_url(base), max_queue=1024)
    await ws.send(json.dumps({"type": "auth", "token": token, **subscription}))
    first = json.loads(await asyncio.wait_for(ws.recv(), 3))
    assert first["type"] == "subscribed", first
    return ws


async def receive(ws: ClientConnection, kinds: set[str], count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] in kinds:
            got.append(message)
    return got


async def nothing_more(ws: ClientConnection, kinds: set[str], wait: float = 0.3) -> None:
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), wait))
            assert message["type"] not in kinds, f"unexpected {message}"
    except TimeoutError:
        return


async def test_two_clients_with_different_filters_get_exactly_their_messages(
    make_settings: Any, redis_client: Redis
) -> None:
    settings = make_settings()
    token = issue_token(settings, "reader", ["products:read"], 60)
    async with running(settings) as url:
        prices = await open_client(url, token, event_types=["ProductPriceChanged"])
        only_p2 = await open_client(url, token, ids=["p2"])
        published = [
            notice("p1", 2, "ProductPriceChanged", price=2.0),
            notice("p2", 2, "ProductDetailsUpdated", name="x"),
            notice("p2", 3, "ProductPriceChanged", price=3.0),
            notice("p3", 1, "ProductCreated", name="new"),
        ]
        for raw in published:
            await redis_client.publish(PRODUCTS.channel, raw)
        got_prices = await receive(prices, {"change"}, 2)
        got_p2 = await receive(only_p2, {"change"}, 2)
        assert [(m["id"], m["version"]) for m in got_prices] == [("p1", 2), ("p2", 3)]
        assert [(m["id"], m["version"], m["event_type"]) for m in got_p2] == [
            ("p2", 2, "ProductDetailsUpdated"),
            ("p2", 3, "ProductPriceChanged"),
        ]
        assert got_prices[0]["changed_fields"] == {"price": 2.0}
        await nothing_more(prices, {"change"})
        await nothing_more(only_p2, {"change"})
        await prices.close()
        await only_p2.close()


async def _refused(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)  # the close arrives before any data frame
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_unauthenticated_clients_are_refused_before_any_data(
    make_settings: Any, redis_client: Redis
) -> None:
    settings = make_settings(ws_auth_deadline_s=0.5)
    async with running(settings) as url:
        silent = await connect(ws_url(url))
        await redis_client.publish(PRODUCTS.channel, notice("p", 1))
        assert await _refused(silent) == 1008

        forged = await connect(ws_url(url))
        await forged.send(json.dumps({"type": "auth", "token": "not-a-jwt"}))
        assert await _refused(forged) == 1008

        writer_only = await connect(ws_url(url))
        token = issue_token(settings, "w", ["products:write"], 60)
        await writer_only.send(json.dumps({"type": "auth", "token": token}))
        assert await _refused(writer_only) == 1008

        long_lived_in_url = await connect(
            ws_url(url, "ticket=" + issue_token(settings, "r", ["products:read"], 3600))
        )
        assert await _refused(long_lived_in_url) == 1008

        bad_filter = await connect(ws_url(url))
        token = issue_token(settings, "r", ["products:read"], 60)
        await bad_filter.send(json.dumps({"type": "auth", "token": token, "event_types": ["X"]}))
        assert await _refused(bad_filter) == 1008


async def test_short_lived_ticket_works_once(make_settings: Any, redis_client: Redis) -> None:
    settings = make_settings()
    token = issue_token(settings, "reader", ["products:read"], 60)
    async with running(settings) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/api/ws-ticket")).status_code == 401
        response = await http.post("/api/ws-ticket", headers={"Authorization": f"Bearer {token}"})
        ticket = response.json()["ticket"]
        ws = await connect(ws_url(url, f"ticket={ticket}&ids=p9"))
        assert json.loads(await asyncio.wait_for(ws.recv(), 3))["type"] == "subscribed"
        await redis_client.publish(PRODUCTS.channel, notice("p9", 1, "ProductCreated"))
        assert (await receive(ws, {"change"}, 1))[0]["id"] == "p9"
        await ws.close()
        replay = await connect(ws_url(url, f"ticket={ticket}"))
        assert await _refused(replay) == 1008


async def _close_code_after_draining(ws: ClientConnection) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1


async def test_a_slow_client_is_dropped_while_a_fast_one_keeps_receiving(
    make_settings: Any, redis_client: Redis
) -> None:
    settings = make_settings(ws_queue_size=16)
    token = issue_token(settings, "reader", ["products:read"], 60)
    total = 1500
    padding = "x" * 4000  # fill the slow client's socket buffers quickly
    async with running(settings) as url:
        fast = await open_client(url, token)
        slow = await open_client(url, token)
        slow.transport.pause_reading()  # a client that stops reading (e.g. a frozen tab)

        async def consume() -> list[int]:
            return [m["version"] for m in await receive(fast, {"change"}, total)]

        consumer = asyncio.create_task(consume())
        for version in range(1, total + 1):
            await redis_client.publish(PRODUCTS.channel, notice("p", version, pad=padding))
        assert await asyncio.wait_for(consumer, 30) == list(range(1, total + 1))

        slow.transport.resume_reading()
        assert await _close_code_after_draining(slow) == 1013
        await fast.close()


async def test_a_reconnecting_client_converges(
    make_settings: Any, mongo_client: AsyncMongoClient[Any], redis_client: Redis
) -> None:
    settings = make_settings()
    token = issue_token(settings, "reader", ["products:read"], 60)
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_many([product_doc("a", 1), product_doc("b", 1), product_doc("c", 1)])
    try:
        async with running(settings) as url:
            ws = await open_client(url, token)
            held = {"a": 1, "b": 1, "c": 1}
            await ws.close()
            # While disconnected: a and c change (their notices are lost to this client).
            await db.products.replace_one({"_id": "a"}, product_doc("a", 3, price=30.0))
            await db.products.replace_one({"_id": "c"}, product_doc("c", 2, price=20.0))
            await db.products.delete_one({"_id": "b"})

            ws = await open_client(url, token, versions=held)
            snapshots = await receive(ws, {"snapshot", "resync_done"}, 4)
            assert snapshots[-1] == {"type": "resync_done", "checked": 3, "sent": 3}
            state = {m["id"]: m["version"] for m in snapshots[:-1]}
            assert state == {"a": 3, "b": None, "c": 2}
            assert {m["id"]: m["document"] for m in snapshots[:-1]}["a"]["price"] == 30.0

            # A gap seen live (a notice for c at 4 after holding 2) resyncs just that id.
            await db.products.replace_one({"_id": "c"}, product_doc("c", 4))
            await ws.send(json.dumps({"type": "resync", "versions": {"c": 2, "a": 3}}))
            resync = await receive(ws, {"snapshot", "resync_done"}, 2)
            assert [(m["type"], m.get("id"), m.get("version")) for m in resync] == [
                ("snapshot", "c", 4),
                ("resync_done", None, None),
            ]
            await ws.send("ping")
            assert (await receive(ws, {"pong"}, 1))[0] == {"type": "pong"}
            await ws.close()
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)


async def test_heartbeats_arrive_on_an_idle_connection(make_settings: Any) -> None:
    settings = make_settings(ws_heartbeat_s=0.2)
    token = issue_token(settings, "reader", ["products:read"], 60)
    async with running(settings) as url:
        ws = await open_client(url, token)
        assert len(await receive(ws, {"heartbeat"}, 2)) == 2
        await ws.close()
