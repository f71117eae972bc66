"""Events from the event store to Kafka: CloudEvents messages, the fast path and the relay.

Each commit goes to its aggregate type's topic (:attr:`tandem.app.AggregateSpec.topic`), keyed
by aggregate id, so one aggregate's events stay in one partition in version order.

The commit document is the outbox (DESIGN.md): it is stored with ``published: false``. The
request path only *queues* the commit for :class:`OutboxPublisher`, which sends batches to Kafka
in the background and marks them published in one ``update_many``; the request returns right
after the MongoDB insert. Anything that does not make it (Kafka down, a full queue, a crash
between insert and publish) stays unmarked in MongoDB, and :class:`OutboxRelay` republishes it
after ``relay_grace_seconds`` in store order, which is per-aggregate version order. Nothing is
ever only in memory, so a failure delays events but never loses them; the price is that an
event can be published twice (at-least-once), which consumers absorb by version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from tandem.event_store import EventStore, OutgoingCommit
from tandem.kafka import ensure_topics
from tandem.runtime.command.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    PUBLISH_ERRORS,
    PUBLISH_QUEUE,
)
from tandem.runtime.contract import CLOUDEVENTS_SOURCE, cloudevent_headers

log = structlog.get_logger("tandem.runtime.command.publishing")

PRODUCER_STATE_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)
"""Errors after which an idempotent producer is useless and must be replaced."""


class EventSink(Protocol):
    """Sends commits and returns once every event is acknowledged; raises otherwise."""

    async def publish(self, commits: Sequence[OutgoingCommit]) -> None: ...


class KafkaEventSink:
    """An idempotent aiokafka producer (acks=all) that connects in the background.

    The service must accept commands while Kafka is down, including at start-up, so
    :meth:`run_connect` retries until the broker answers instead of failing the lifespan.
    ``topics`` maps each aggregate type to its topic; one producer serves every app.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Mapping[str, str],
        *,
        partitions: int,
        replication_factor: int = 1,
        request_timeout_ms: int = 30000,
        linger_ms: int = 2,
        retry_backoff: float = 1.0,
        source: str = CLOUDEVENTS_SOURCE,
    ) -> None:
        self.topics = dict(topics)
        self._bootstrap = bootstrap_servers
        self._partitions = partitions
        self._replication = replication_factor
        self._request_timeout_ms = request_timeout_ms
        self._linger_ms = linger_ms
        self._backoff = retry_backoff
        self._source = source
        self._producer: AIOKafkaProducer | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def run_connect(self) -> None:
        """Create the topic if absent and start the producer, retrying until both succeed."""
        while not self.connected.is_set():
            try:
                await self.ensure_topic()
                producer = self._new_producer()
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
            except Exception as exc:  # the broker is down or still starting: keep trying
                log.warning("kafka not reachable yet", error=repr(exc), retry_in=self._backoff)
                await asyncio.sleep(self._backoff)
                continue
            self._producer = producer
            self.connected.set()
            log.info("kafka producer started", topics=sorted(self.topics.values()))

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=self._linger_ms,
            request_timeout_ms=self._request_timeout_ms,
            max_batch_size=256 * 1024,
        )

    async def ensure_topic(self) -> None:
        created = await ensure_topics(
            self._bootstrap,
            sorted(set(self.topics.values())),
            partitions=self._partitions,
            replication_factor=self._replication,
            request_timeout_ms=self._request_timeout_ms,
        )
        if created:
            log.info("topics created", topics=created, partitions=self._partitions)

    async def publish(self, commits: Sequence[OutgoingCommit]) -> None:
        producer = self._producer
        if producer is None:
            raise ConnectionError("the Kafka producer is not connected yet")
        futures: list[asyncio.Future[Any]] = []
        topics = self.topics
        for commit in commits:
            for event in commit.events:
                futures.append(
                    await producer.send(
                        topics[event.aggregate_type],
                        value=event.to_json(),
                        key=event.aggregate_id.encode(),
                        headers=cloudevent_headers(event, self._source),
                    )
                )
        try:
            await asyncio.gather(*futures)
        except PRODUCER_STATE_LOST as exc:
            self._replace(producer, exc)
            raise

    def _replace(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        """The broker no longer accepts this producer's sequence (e.g. it restarted and lost
        in-flight batches): an idempotent producer cannot recover from that, and every later
        send would fail the same way. Start a new one (a new producer id) in the background;
        the failed commits stay unmarked and the relay publishes them again."""
        if self._producer is not producer:
            return  # another failure replaced it already
        log.warning("kafka producer state lost; starting a new producer", error=repr(exc))
        self._producer = None
        self.connected.clear()
        self._reconnect = asyncio.create_task(self._restart(producer))

    async def _restart(self, old: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await old.stop()
        await self.run_connect()

    async def check(self) -> None:
        """Readiness: the cluster answers a metadata request within two seconds."""
        producer = self._producer
        if producer is None:
            raise ConnectionError("kafka producer not connected")
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2)

    async def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(BaseException):
                await self._reconnect
            self._reconnect = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        self.connected.clear()


class OutboxPublisher:
    """The fast path: a bounded queue drained by one task that batches sends and marks.

    ``submit`` never blocks and never fails: when the queue is full, or while the last publish
    failed, a commit is simply left to the relay (it is already durable in MongoDB).

    Marking published commits runs beside the sends, not between them: the next batch goes out
    while the last one is being marked, so a commit does not wait for a MongoDB write it does
    not need. Marks of several batches merge into one ``update_many``.
    """

    def __init__(
        self,
        sink: EventSink,
        store: EventStore,
        *,
        batch_size: int = 500,
        queue_size: int = 20000,
        retry_backoff: float = 1.0,
    ) -> None:
        self._sink = sink
        self._store = store
        self._batch_size = batch_size
        self._queue: asyncio.Queue[OutgoingCommit] = asyncio.Queue(maxsize=queue_size)
        self._backoff = retry_backoff
        self.healthy = True
        self._to_mark: list[str] = []
        self._mark_due = asyncio.Event()
        self._mark_lock = asyncio.Lock()

    def submit(self, commit: OutgoingCommit) -> None:
        if not self.healthy:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(commit)
            PUBLISH_QUEUE.inc()

    async def run(self) -> None:
        marker = asyncio.create_task(self._mark_loop())
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._batch_size and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                PUBLISH_QUEUE.dec(len(batch))
                await self._publish(batch)
        finally:
            marker.cancel()
            await asyncio.gather(marker, return_exceptions=True)

    async def _mark_loop(self) -> None:
        while True:
            await self._mark_due.wait()
            await self.flush_marks()

    async def flush_marks(self) -> None:
        async with self._mark_lock:  # a shutdown flush waits for the mark in flight
            self._mark_due.clear()
            ids, self._to_mark = self._to_mark, []
            if not ids:
                return
            try:
                await self._store.mark_published(ids)
            except Exception as exc:
                # Published, not marked: the relay sends them again (a duplicate, not a loss).
                log.warning("mark_published failed", error=repr(exc), commits=len(ids))

    async def drain(self, timeout: float) -> None:
        """Publish what is queued (shutdown); what does not make it is left to the relay."""
        batch: list[OutgoingCommit] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        PUBLISH_QUEUE.dec(len(batch))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                if batch:
                    await self._publish(batch)
                await self.flush_marks()

    async def _publish(self, batch: list[OutgoingCommit]) -> None:
        try:
            await self._sink.publish(batch)
        except Exception as exc:
            # Not lost: the commits stay unmarked in MongoDB and the relay republishes them.
            PUBLISH_ERRORS.labels("fast").inc()
            log.warning("publish failed; left to the relay", error=repr(exc), commits=len(batch))
            self._degrade()
            await asyncio.sleep(self._backoff)
            self.healthy = True
            return
        EVENTS_PUBLISHED.labels("fast").inc(sum(len(c.events) for c in batch))
        self._to_mark.extend(c.commit_id for c in batch)
        self._mark_due.set()

    def _degrade(self) -> None:
        # While Kafka is failing, queued commits would each wait for a timeout; the relay
        # publishes them in store order once Kafka is back.
        self.healthy = False
        dropped = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            dropped += 1
        PUBLISH_QUEUE.dec(dropped)


class OutboxRelay:
    """Republishes commits left unpublished for longer than ``grace``, oldest first."""

    def __init__(
        self,
        sink: EventSink,
        store: EventStore,
        *,
        interval: float,
        grace: timedelta,
        batch_size: int = 500,
        backlog: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._sink = sink
        self._store = store
        self._interval = interval
        self._grace = grace
        self._batch_size = batch_size
        self._backlog = backlog

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # MongoDB or Kafka down: nothing was marked, try again
                PUBLISH_ERRORS.labels("relay").inc()
                log.warning("outbox relay pass failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    async def run_once(self) -> int:
        """One pass: publish and mark every due commit; returns how many commits it published."""
        total = 0
        while True:
            commits = await self._store.list_unpublished(self._grace, self._batch_size)
            if commits:
                await self._sink.publish([OutgoingCommit.from_stored(c) for c in commits])
                EVENTS_PUBLISHED.labels("relay").inc(sum(len(c.events) for c in commits))
                await self._store.mark_published([c.commit_id for c in commits])
                total += len(commits)
                log.info("relay published", commits=len(commits))
            if len(commits) < self._batch_size:
                break
        if self._backlog is not None:
            OUTBOX_BACKLOG.set(await self._backlog())
        return total
