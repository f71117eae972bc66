"""The one Redis pub/sub subscriber of a query-service process, on every read model's channel.

Every consumer of change notices in the process (the LRU, the ``min_version`` waiters, the
WebSocket fan-out, the collection pointer) registers a listener here; nothing else opens a
subscription. A listener is a plain function called synchronously, in registration order,
once per notice (``ChangeNotice.read_model`` says whose; :mod:`tandem.runtime.query.views`
routes it to that read model's caches, waiters and sockets): the fan-out serializes a notice once for all its clients, and the cache is
invalidated before any waiter is woken, so a woken reader cannot read the stale entry.

Redis pub/sub is at-most-once: notices published while the subscriber is disconnected are
lost. After a reconnect the ``on_reconnect`` listeners run (the LRU is cleared, waiters
re-read, WebSocket clients are told to resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.metrics import NOTICES, SUBSCRIBER_RECONNECTS

logger = logging.getLogger(__name__)

NoticeListener = Callable[[ChangeNotice, bytes], None]
ReconnectListener = Callable[[], None]
# Published by the projector after a rebuild switched the active collection.
READ_MODEL_SWITCHED = "ReadModelSwitched"
_RECEIVED = NOTICES.labels("received")
_INVALID = NOTICES.labels("invalid")


class NoticeSubscriber:
    def __init__(
        self, client: Redis, channels: Sequence[str], *, reconnect_delay: float = 0.5
    ) -> None:
        self.client = client
        self.channels = tuple(channels)
        self.reconnect_delay = reconnect_delay
        self._listeners: list[NoticeListener] = []
        self._reconnect_listeners: list[ReconnectListener] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def add_listener(self, listener: NoticeListener) -> None:
        self._listeners.append(listener)

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        self._reconnect_listeners.append(listener)

    async def start(self, wait_seconds: float = 5.0) -> None:
        """Start listening; wait (bounded) for the first subscription so a test or a
        readiness probe can rely on notices published after ``start`` returns."""
        if not self.channels:  # no read model to hear about: nothing to subscribe to
            self.connected.set()
            return
        self._task = asyncio.create_task(self._run(), name="change-notice-subscriber")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def dispatch(self, raw: bytes) -> None:
        """Handle one raw notice (public so unit tests can drive listeners without Redis)."""
        try:
            notice = ChangeNotice.model_validate_json(raw)
        except ValidationError as exc:
            _INVALID.inc()
            logger.warning("ignoring malformed change notice %r: %s", raw[:200], exc)
            return
        _RECEIVED.inc()
        for listener in self._listeners:
            try:
                listener(notice, raw)
            except Exception:  # one broken listener must not starve the others
                logger.exception("change-notice listener %r failed", listener)

    async def _run(self) -> None:
        lost = False
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.channels)
                self.connected.set()
                if lost:
                    lost = False
                    SUBSCRIBER_RECONNECTS.inc()
                    logger.info("change-notice subscriber reconnected to %s", self.channels)
                    self._reconnected()
                while True:
                    message: dict[str, Any] | None = await pubsub.get_message(timeout=30.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self.dispatch(data if isinstance(data, bytes) else str(data).encode())
            except (RedisError, OSError) as exc:
                self.connected.clear()
                lost = True
                logger.warning("change-notice subscriber lost Redis (%r); reconnecting", exc)
                await asyncio.sleep(self.reconnect_delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _reconnected(self) -> None:
        for listener in self._reconnect_listeners:
            try:
                listener()
            except Exception:
                logger.exception("reconnect listener %r failed", listener)


def encode_notice(notice: ChangeNotice) -> bytes:
    return orjson.dumps(notice.model_dump(mode="json"))
