"""The Redis change feed: change notices from the process's one subscriber, as a
:class:`~tandem.dispatch.ChangeFeed` the library's live WebSocket endpoint subscribes to.

It is an :class:`~tandem.dispatch.EventDispatcher` (subscribe by event type, unsubscribe) whose
messages come from Redis instead of ``publish``. A notice is serialized once into its text
frame (``{"type": "change", ...}``) and handed to every subscribed handler with that frame
attached, so a thousand clients cost one serialization; the endpoint's handlers are plain
functions that queue the frame, so delivery never awaits a slow client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from tandem.dispatch import EventDispatcher
from tandem.runtime.contract import ChangeNotice

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveChange:
    """A notice and its frame, as the feed delivers it (``ws_frame`` is what the endpoint sends)."""

    notice: ChangeNotice
    ws_frame: str

    @property
    def event_type(self) -> str:
        return self.notice.event_type

    @property
    def id(self) -> str:
        return self.notice.id


def change_frame(notice: ChangeNotice) -> str:
    return orjson.dumps({"type": "change", **notice.model_dump(mode="json")}).decode()


class RedisChangeFeed(EventDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self._pending: set[asyncio.Future[Any]] = set()

    def on_notice(self, notice: ChangeNotice, raw: bytes) -> None:
        """The notice subscriber's listener (synchronous, in the subscriber's task)."""
        subscriptions = self.subscribers(notice)
        if not subscriptions:
            return
        change = LiveChange(notice, change_frame(notice))  # once, whatever the client count
        for subscription in subscriptions:
            result = subscription.handler(change)
            if inspect.isawaitable(result):  # an async subscriber runs on its own
                future = asyncio.ensure_future(result)
                self._pending.add(future)
                future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("change-feed handler failed", exc_info=future.exception())
