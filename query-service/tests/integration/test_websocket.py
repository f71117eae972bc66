"""``/ws/products`` with real WebSocket clients against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from tandem.auth import issue_token
from tandem.runtime.query.testing import running
from tandem.testing.system import free_port
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


async def _closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The close code and reason, skipping whatever frames come before the close."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as closed:
        frame = closed.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


async def test_protocol_errors_close_with_their_codes(make_settings: Any) -> None:
    settings = make_settings(ws_max_ids=3)
    token = issue_token(settings, "reader", ["products:read"], 60)
    async with running(settings) as url:
        # After auth, a message the server cannot parse or does not know: 1003.
        not_json = await open_client(url, token)
        await not_json.send("{not json")
        assert (await _closed_with(not_json))[0] == 1003
        unknown_type = await open_client(url, token)
        await unknown_type.send(json.dumps({"type": "teleport"}))
        code, reason = await _closed_with(unknown_type)
        assert (code, "teleport" in reason) == (1003, True)

        # A subscription the server refuses: 1008, at auth or in a later subscribe.
        too_many = await connect(ws_url(url))
        await too_many.send(
            json.dumps({"type": "auth", "token": token, "ids": ["a", "b", "c", "d"]})
        )
        code, reason = await _closed_with(too_many)
        assert (code, reason) == (1008, "at most 3 ids")
        resubscribed = await open_client(url, token)
        await resubscribed.send(json.dumps({"type": "subscribe", "event_types": ["ProductMoved"]}))
        code, reason = await _closed_with(resubscribed)
        assert (code, "ProductMoved" in reason) == (1008, True)
        resubscribed_ids = await open_client(url, token)
        await resubscribed_ids.send(json.dumps({"type": "subscribe", "ids": list("abcd")}))
        assert await _closed_with(resubscribed_ids) == (1008, "at most 3 ids")

        # An expired token at auth: 1008, before any data.
        past = int(time.time()) - 3600
        expired = jwt.encode(
            {"sub": "r", "scope": "products:read", "aud": settings.jwt_audience, "exp": past},
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
        )
        late = await connect(ws_url(url))
        await late.send(json.dumps({"type": "auth", "token": expired}))
        code, reason = await _closed_with(late)
        assert (code, reason.split(":")[0]) == (1008, "token_expired")

        # The same connection stays open for a well-formed message.
        fine = await open_client(url, token)
        await fine.send(json.dumps({"type": "subscribe", "ids": ["a", "b"]}))
        assert (await receive(fine, {"subscribed"}, 1))[0]["ids"] == ["a", "b"]
        await fine.close()


def _redis_server(port: int, workdir: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required"
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )


async def _redis_answers(url: str) -> None:
    client = Redis.from_url(url)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    if await client.ping():
                        return
                except RedisConnectionError:
                    await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_every_client_is_told_to_resync_when_the_subscriber_reconnects(
    make_settings: Any, tmp_path: Path
) -> None:
    """Notices published while the subscriber was away are lost (pub/sub is at most once),
    so after a reconnect every client gets ``resync_required``."""
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    server = _redis_server(port, str(tmp_path))
    try:
        await _redis_answers(redis_url)
        settings = make_settings(redis_url=redis_url)
        token = issue_token(settings, "reader", ["products:read"], 60)
        async with running(settings) as url:
            clients = [
                await open_client(url, token),
                await open_client(url, token, ids=["p1"]),
                await open_client(url, token, event_types=["ProductPriceChanged"]),
            ]
            server.kill()
            server.wait()
            server = _redis_server(port, str(tmp_path))
            await _redis_answers(redis_url)
            for ws in clients:
                [frame] = await receive(ws, {"resync_required"}, 1)
                assert frame == {"type": "resync_required", "reason": "notices lost"}
            # And the stream flows again through the new connection.
            publisher = Redis.from_url(redis_url)
            try:
                async with asyncio.timeout(10):
                    while True:  # until the subscriber is on the channel again
                        if await publisher.publish(PRODUCTS.channel, notice("p1", 1)):
                            break
                        await asyncio.sleep(0.05)
            finally:
                await publisher.aclose()
            assert (await receive(clients[1], {"change"}, 1))[0]["id"] == "p1"
            for ws in clients:
                await ws.close()
    finally:
        server.kill()
        server.wait()
