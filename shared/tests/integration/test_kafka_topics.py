"""``tandem.kafka.ensure_topics`` on the real broker: creates what is missing, once."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from tandem.kafka import ensure_topics

pytestmark = pytest.mark.integration


async def test_missing_topics_are_created_with_the_partitions_and_only_once(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topics = [f"{unique_name}.a", f"{unique_name}.b"]
    assert await ensure_topics(kafka_bootstrap, topics, partitions=3) == topics
    # Again, twice at once (two services starting together): nothing to create, no error.
    again = await asyncio.gather(
        ensure_topics(kafka_bootstrap, topics, partitions=3),
        ensure_topics(kafka_bootstrap, [*topics, topics[0]], partitions=3),
    )
    assert again == [[], []]

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == dict.fromkeys(topics, 3)
