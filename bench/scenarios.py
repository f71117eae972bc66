"""The scenarios (a)-(e) against the real services, with the same client machinery as the raw
limits (``bench.loadgen``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.runtime.contract import READ_MODEL_POINTERS
from tandem_catalog.app import app as catalog

from bench.common import REPO, percentiles
from bench.loadgen import HttpClients, run_closed, run_open
from bench.procs import StackPorts
from bench.raw import product_doc

PRODUCTS = catalog.read_model("products")
PRODUCTS_READ_MODEL = PRODUCTS.name
CHANGES_CHANNEL = PRODUCTS.channel
PRODUCT_TOPIC = catalog.aggregates[0].topic


@dataclass
class Ctx:
    """What every scenario needs: where the services are, tokens, sizes."""

    ports: StackPorts
    command_url: str
    query_url: str
    write_token: str
    read_token: str
    concurrency: int
    duration: float
    warmup: float
    quick: bool
    read_db: str = "bench_read"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def write_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.write_token}"}


def _new_product(i: int) -> dict[str, Any]:
    return {
        "name": f"Bench product {i}",
        "description": "Created by the benchmark",
        "price": f"{10 + i % 90}.{i % 100:02d}",
        "category": f"bench-{i % 8}",
    }


async def create_products(ctx: Ctx, n: int) -> list[tuple[str, int]]:
    async with HttpClients(ctx.concurrency, ctx.command_url, ctx.write_headers) as clients:
        made: list[tuple[str, int]] = []

        async def op(w: int, i: int) -> bool:
            resp = await clients[w].post("/api/products", json=_new_product(i))
            if resp.status_code != 201:
                raise RuntimeError(f"create: {resp.status_code} {resp.text[:200]}")
            body = resp.json()
            made.append((body["id"], int(body["version"])))
            return True

        result = await run_closed(op, ctx.concurrency, count=n)
        if result.errors:
            raise RuntimeError(f"could not create products: {result.first_error}")
    return made


async def wait_visible(ctx: Ctx, products: list[tuple[str, int]], timeout_ms: int = 10000) -> None:
    async with HttpClients(ctx.concurrency, ctx.query_url) as clients:

        async def op(w: int, i: int) -> bool:
            pid, version = products[i]
            resp = await clients[w].get(
                f"/api/products/{pid}", params={"min_version": version, "wait_ms": timeout_ms}
            )
            return resp.status_code == 200

        result = await run_closed(op, ctx.concurrency, count=len(products))
        if result.errors:
            raise RuntimeError(f"products did not become visible: {result.first_error}")


# --- (a) writes ----------------------------------------------------------------------------


async def writes(ctx: Ctx) -> dict[str, Any]:
    """Create + update commands over HTTP at fixed concurrency: commands/s and latency."""
    last: dict[int, str] = {}
    async with HttpClients(ctx.concurrency, ctx.command_url, ctx.write_headers) as clients:

        async def op(w: int, i: int) -> bool:
            client = clients[w]
            if w not in last or i % 2 == 0:
                resp = await client.post("/api/products", json=_new_product(i))
                if resp.status_code != 201:
                    raise RuntimeError(f"create {resp.status_code}: {resp.text[:200]}")
                last[w] = resp.json()["id"]
                return True
            resp = await client.patch(
                f"/api/products/{last[w]}", json={"description": f"updated by bench {i}"}
            )
            if resp.status_code != 200:
                raise RuntimeError(f"update {resp.status_code}: {resp.text[:200]}")
            return True

        result = await run_closed(op, ctx.concurrency, duration=ctx.duration, warmup=ctx.warmup)
    return result.summary()


# --- (b) freshness -------------------------------------------------------------------------


async def ws_connect(ctx: Ctx) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(ctx.query_url.replace("http", "ws", 1) + "/ws/products", max_queue=None)
    await ws.send(json.dumps({"type": "auth", "token": ctx.read_token}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("type") == "subscribed":
            return ws


async def freshness(ctx: Ctx, write_rate: float) -> dict[str, Any]:
    """Price changes at ``write_rate``/s (open loop): time from sending the command until
    (1) a ``min_version`` read returns it and (2) the WebSocket frame for it arrives."""
    pool = await create_products(ctx, max(20, int(write_rate)))
    await wait_visible(ctx, pool)
    versions = dict(pool)
    ids = list(versions)
    busy: set[str] = set()
    ws = await ws_connect(ctx)
    ws_seen: dict[tuple[str, int], float] = {}

    async def ws_reader() -> None:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") == "change":
                ws_seen[(frame["id"], int(frame["version"]))] = time.perf_counter()

    reader = asyncio.create_task(ws_reader())
    kafka_seen: dict[tuple[str, int], float] = {}
    tap = await kafka_tap(ctx, kafka_seen)
    sent: dict[tuple[str, int], float] = {}
    read_lat: list[float] = []
    read_after_ack: list[float] = []
    cmd_lat: list[float] = []
    errors: list[str] = []
    conc = max(ctx.concurrency, 64)
    async with (
        HttpClients(conc, ctx.command_url, ctx.write_headers) as cmd_clients,
        HttpClients(conc, ctx.query_url) as read_clients,
    ):
        free = list(range(conc))

        async def one(i: int) -> None:
            candidates = [p for p in ids if p not in busy]
            if not candidates or not free:
                errors.append("no free product or connection (rate too high for the pool)")
                return
            pid = random.choice(candidates)
            slot = free.pop()
            busy.add(pid)
            try:
                price = f"{random.randint(10, 99)}.{random.randint(0, 99):02d}"
                t0 = time.perf_counter()
                resp = await cmd_clients[slot].post(
                    f"/api/products/{pid}/price", json={"price": price}
                )
                t1 = time.perf_counter()
                if resp.status_code != 200:
                    errors.append(f"price {resp.status_code}: {resp.text[:120]}")
                    return
                version = int(resp.json()["version"])
                if version <= versions[pid]:
                    return  # same price: nothing appended
                versions[pid] = version
                sent[(pid, version)] = t0
                cmd_lat.append(t1 - t0)
                r = await read_clients[slot].get(
                    f"/api/products/{pid}", params={"min_version": version, "wait_ms": 5000}
                )
                t2 = time.perf_counter()
                if r.status_code != 200:
                    errors.append(f"read {r.status_code}: {r.text[:120]}")
                    return
                read_lat.append(t2 - t0)
                read_after_ack.append(t2 - t1)
            finally:
                busy.discard(pid)
                free.append(slot)

        await run_open(one, write_rate, ctx.duration)
    await asyncio.sleep(1.0)
    reader.cancel()
    tap.cancel()
    await ws.close()
    ws_lat = [ws_seen[k] - t for k, t in sent.items() if k in ws_seen]
    on_topic = [kafka_seen[k] - t for k, t in sent.items() if k in kafka_seen]
    topic_to_ws = [ws_seen[k] - kafka_seen[k] for k in sent if k in ws_seen and k in kafka_seen]
    return {
        "rate_target": round(write_rate, 1),
        "commands": len(sent),
        "errors": len(errors),
        **({"first_error": errors[0]} if errors else {}),
        "command": percentiles(cmd_lat),
        "read_model": percentiles(read_lat),
        "read_model_after_ack": percentiles(read_after_ack),
        "websocket": percentiles(ws_lat),
        "websocket_missing": len(sent) - len(ws_lat),
        # Where the time goes: command sent -> on the topic (command service, outbox, Kafka),
        # then on the topic -> WebSocket frame (projector, Redis, query service).
        "stage_on_topic": percentiles(on_topic),
        "stage_topic_to_websocket": percentiles(topic_to_ws),
    }


async def kafka_tap(ctx: Ctx, seen: dict[tuple[str, int], float]) -> asyncio.Task[None]:
    """A group-less consumer at the end of every partition: when each event became readable."""
    consumer = AIOKafkaConsumer(
        PRODUCT_TOPIC,
        bootstrap_servers=f"127.0.0.1:{ctx.ports.kafka}",
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    for _ in range(100):  # without a group, every partition is assigned once metadata arrives
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    for partition in consumer.assignment():
        await consumer.position(partition)  # resolve "latest" now, before the load starts

    async def run() -> None:
        try:
            async for record in consumer:
                body = orjson.loads(record.value or b"{}")
                seen[(str(body.get("aggregate_id")), int(body.get("version") or 0))] = (
                    time.perf_counter()
                )
        finally:
            await consumer.stop()

    return asyncio.create_task(run())


# --- (d) reads -----------------------------------------------------------------------------


async def active_products_collection(ctx: Ctx, client: AsyncMongoClient[dict[str, Any]]) -> str:
    pointer = await client[ctx.read_db][READ_MODEL_POINTERS].find_one({"_id": PRODUCTS_READ_MODEL})
    return str(pointer["active"]) if pointer and pointer.get("active") else PRODUCTS_READ_MODEL


async def reads(ctx: Ctx) -> dict[str, Any]:
    """GET by id served from the caches, GET by id that misses both caches, and search."""
    hot = await create_products(ctx, 200 if not ctx.quick else 40)
    await wait_visible(ctx, hot)
    hot_ids = [pid for pid, _ in hot]
    out: dict[str, Any] = {}
    async with HttpClients(ctx.concurrency, ctx.query_url) as clients:
        for pid in hot_ids:  # fill both cache levels
            await clients[0].get(f"/api/products/{pid}")

        async def hit(w: int, i: int) -> bool:
            r = await clients[w].get(f"/api/products/{hot_ids[i % len(hot_ids)]}")
            return r.status_code == 200

        out["cache_hit"] = (
            await run_closed(hit, ctx.concurrency, duration=ctx.duration, warmup=ctx.warmup)
        ).summary()

        # Misses: documents written straight into the read model, never cached, each read once.
        n_miss = 1000 if ctx.quick else 10000
        tag = f"miss-{uuid.uuid4().hex[:6]}"
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ctx.ports.mongo_url)
        try:
            coll = mongo[ctx.read_db][await active_products_collection(ctx, mongo)]
            docs = [product_doc(i, tag) for i in range(n_miss)]
            for start in range(0, n_miss, 1000):
                await coll.insert_many(docs[start : start + 1000])
        finally:
            await mongo.close()

        async def miss(w: int, i: int) -> bool:
            r = await clients[w].get(f"/api/products/{tag}-{i}")
            return r.status_code == 200

        out["cache_miss"] = (await run_closed(miss, ctx.concurrency, count=n_miss)).summary()
        terms = ["Bench", "product 1", "benchmark", "Created"]

        async def search(w: int, i: int) -> bool:
            r = await clients[w].get(
                "/api/products/search",
                params={"q": terms[i % len(terms)], "category": f"bench-{i % 8}", "page_size": 20},
            )
            return r.status_code == 200

        out["search"] = (
            await run_closed(search, ctx.concurrency, duration=ctx.duration, warmup=ctx.warmup)
        ).summary()

        # Every request a new question (the search cache cannot answer it): what a search
        # costs the read model itself. The term still matches within the category.
        distinct = itertools.count()

        async def search_distinct(w: int, i: int) -> bool:
            n = next(distinct)
            r = await clients[w].get(
                "/api/products/search",
                params={"q": f"product {n}", "category": f"bench-{n % 8}", "page_size": 20},
            )
            return r.status_code == 200

        out["search_distinct"] = (
            await run_closed(
                search_distinct, ctx.concurrency, duration=ctx.duration, warmup=ctx.warmup
            )
        ).summary()
    return out


# --- (e) WebSocket fan-out -----------------------------------------------------------------


async def fanout(ctx: Ctx, clients: int, burst: int) -> dict[str, Any]:
    """``clients`` WebSocket clients in a separate process; ``burst`` change notices published
    at once on the Redis channel the query-service fans out from (so the figure is the fan-out
    itself, not the write path): frames/s delivered and the delay from publish to receipt."""
    url = ctx.query_url.replace("http", "ws", 1) + "/ws/products"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.wsclients",
        url,
        ctx.read_token,
        str(clients),
        str(burst),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=180)
    if not line.startswith(b"READY"):
        raise RuntimeError(f"ws clients did not connect: {line!r}")
    connected = int(line.split()[1])
    redis = Redis.from_url(ctx.ports.redis_url)
    run = uuid.uuid4().hex[:6]
    published: dict[str, float] = {}
    try:
        proc.stdin.write(b"GO\n")
        await proc.stdin.drain()
        await asyncio.sleep(0.3)
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(burst):
                pid = f"fan-{run}-{i}"
                notice = {
                    "read_model": PRODUCTS_READ_MODEL,
                    "id": pid,
                    "version": 1,
                    "event_type": "ProductPriceChanged",
                    "changed_fields": {"price": "19.99"},
                    "correlation_id": None,
                    "occurred_at": None,
                }
                pipe.publish(CHANGES_CHANNEL, orjson.dumps(notice))
            t_pub = time.time()
            await pipe.execute()
        for i in range(burst):
            published[f"fan-{run}-{i}"] = t_pub
        raw = await asyncio.wait_for(proc.stdout.read(), timeout=300)
        await proc.wait()
    finally:
        await redis.aclose()
        if proc.returncode is None:
            proc.kill()
    report = json.loads(raw)
    delays = [
        t - published[pid]
        for pid, times in report["frames"].items()
        if pid in published
        for t in times
    ]
    frames = len(delays)
    last = max((t for times in report["frames"].values() for t in times), default=t_pub)
    span = max(1e-6, last - t_pub)
    return {
        "clients": connected,
        "burst": burst,
        "frames_expected": connected * burst,
        "frames": frames,
        "seconds": round(span, 3),
        "rate": round(frames / span, 1),
        "closed_by_server": report.get("closed", 0),
        "client_cpu_pct": report.get("cpu_pct"),
        **percentiles(delays),
    }
