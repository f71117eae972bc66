"""Write raw messages straight into a Kafka topic: duplicates, reordering, poison."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from tandem.events import DomainEvent
from tandem.runtime.contract import cloudevent_headers


class Injector:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic

    async def send_events(self, events: Sequence[DomainEvent]) -> None:
        """Publish events in the given order (which may be shuffled or repeated on purpose)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for event in events:
                await producer.send_and_wait(
                    self.topic,
                    event.to_json(),
                    key=event.aggregate_id.encode(),
                    headers=cloudevent_headers(event),
                )
        finally:
            await producer.stop()

    async def send_raw(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(self.topic, value, key=key, headers=headers or [])
        finally:
            await producer.stop()
