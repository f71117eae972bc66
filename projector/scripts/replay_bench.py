"""Events/s of one projector applying N pre-loaded events, against raw bulk_write upserts/s.

    uv run python projector/scripts/replay_bench.py --events 100000

Loads N events (products with a few changes each) into a fresh event store and topic, runs one
in-process projector from offset 0 until the read model equals the fold, and prints both rates.
Uses fresh databases/topic (dropped at the end) on the TANDEM_* servers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient, UpdateOne
from tandem.runtime.contract import cloudevent_headers, dlq_topic
from tandem.runtime.projector.bootstrap import (
    ProjectorSettings,
    build_consumer,
    clients,
    kafka_consumer,
    kafka_producer,
)


async def raw_upserts(
    mongo: AsyncMongoClient[dict[str, Any]], db: str, n: int, batch: int
) -> float:
    col = mongo[db]["raw_bench"]
    start = time.perf_counter()
    for i in range(0, n, batch):
        await col.bulk_write(
            [
                UpdateOne(
                    {"_id": f"id{j}"},
                    {
                        "$set": {
                            "version": 1,
                            "name": "n",
                            "price": 1.5,
                            "category": "c",
                            "status": "active",
                        }
                    },
                    upsert=True,
                )
                for j in range(i, min(n, i + batch))
            ],
            ordered=False,
        )
    return n / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests"))
    from projector_helpers import random_history

    name = f"bench_{uuid.uuid4().hex[:8]}"
    base = ProjectorSettings()
    settings = base.model_copy(
        update={
            "mongo_write_db": f"{name}_w",
            "mongo_read_db": f"{name}_r",
            "topics": [f"{name}.product.events"],
            "group_id": f"{name}-projector",
            "batch_size": args.batch,
        }
    )
    topic = settings.topics[0]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(t, args.partitions, 1) for t in (topic, dlq_topic(topic))])
    await admin.close()
    async with clients(settings) as c:
        rng = random.Random(1)
        events = []
        while len(events) < args.events:
            events.extend(random_history(str(uuid.uuid4()), rng, rng.randint(1, 5)))
        events = events[: args.events]
        # Pre-load: commits straight into the store (one per event), then the topic.
        docs, versions = [], {}
        for position, event in enumerate(events, 1):
            v = versions.get(event.aggregate_id, 0) + 1
            versions[event.aggregate_id] = v
            stamped = event.model_copy(update={"version": v})
            events[position - 1] = stamped
            docs.append(
                {
                    "_id": f"{event.aggregate_id}:{v:010d}",
                    "aggregate_id": event.aggregate_id,
                    "aggregate_type": "Product",
                    "version": v,
                    "last_version": v,
                    "position": position,
                    "events": [stamped.to_dict()],
                    "published": True,
                    "committed_at": stamped.occurred_at,
                }
            )
        for i in range(0, len(docs), 5000):
            await c.write_db[c.apps[0].events_collection].insert_many(docs[i : i + 5000])
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        futures = [
            await producer.send(
                topic, e.to_json(), key=e.aggregate_id.encode(), headers=cloudevent_headers(e)
            )
            for e in events
        ]
        await asyncio.gather(*futures)
        await producer.stop()
        print(f"pre-loaded {len(events)} events for {len(versions)} products")

        consumer = kafka_consumer(settings, c.served.group_id)
        dlq_producer = kafka_producer(settings)
        await dlq_producer.start()
        await consumer.start()
        runner = await build_consumer(c, consumer, dlq_producer)
        start = time.perf_counter()
        task = asyncio.create_task(runner.run())
        target = len(versions)
        total_versions = sum(versions.values())
        while True:
            done = [d async for d in c.read_db["products"].find({}, {"version": 1})]
            if len(done) == target and sum(d["version"] for d in done) == total_versions:
                break
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - start
        runner.stop()
        await task
        await consumer.stop()
        await dlq_producer.stop()
        projector_rate = len(events) / elapsed
        raw_rate = await raw_upserts(
            c.mongo, settings.mongo_read_db, min(20_000, args.events), args.batch
        )
        print(f"projector: {len(events)} events in {elapsed:.1f}s = {projector_rate:,.0f} events/s")
        print(f"raw bulk_write upserts: {raw_rate:,.0f}/s; ratio {projector_rate / raw_rate:.2f}")
        await c.mongo.drop_database(settings.mongo_write_db)
        await c.mongo.drop_database(settings.mongo_read_db)


if __name__ == "__main__":
    asyncio.run(main())
