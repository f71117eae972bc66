"""Kafka helpers shared by the services (imported only where aiokafka is installed).

Both the writer and the readers of a topic create it if it is missing, with the same
partition count, because whichever starts first must not leave the other waiting: a consumer
that subscribes to a topic that does not exist yet only notices it at its next metadata
refresh (minutes by default), so a projector started before the command-service would sit idle.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    request_timeout_ms: int = 10_000,
) -> list[str]:
    """Create the missing ``topics``; returns the names created. Idempotent, and safe when
    several processes race (the loser's ``TOPIC_ALREADY_EXISTS`` is not an error)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor) for t in missing]
        )
        for name, code, *_ in getattr(response, "topic_errors", ()):
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error code {code}")
        return missing
    finally:
        await admin.close()


__all__ = ["ensure_topics"]
