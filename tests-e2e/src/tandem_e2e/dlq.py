"""Read the dead-letter topic directly, to find what a scenario poisoned."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer


async def read_topic(
    bootstrap: str, topic: str, idle_s: float = 2.0
) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every message of ``topic`` from the beginning: (value, headers)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        client_id=f"e2e-dlq-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            if not batch:
                return found
            for records in batch.values():
                for record in records:
                    headers = dict(record.headers or ())
                    found.append((record.value or b"", headers))
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
