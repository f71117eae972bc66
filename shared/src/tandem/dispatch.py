"""In-process publish/subscribe of events, and the port a cross-process feed implements.

:class:`EventDispatcher` is for tests and single-process apps. The query runtime's Redis change
feed (:class:`tandem.runtime.query.fanout.RedisChangeFeed`) is an :class:`EventDispatcher`
fed by the Redis notice subscriber, so the live WebSocket endpoint
(:func:`tandem.api.create_websocket_endpoint`) runs on either without knowing which.

A handler may be a coroutine function or a plain function: the live endpoint's handlers are
plain (they only queue a frame), so a feed can deliver one message to thousands of clients
without a coroutine per client.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

WILDCARD = "*"
EventCallback = Callable[[Any], Awaitable[None] | None]


def event_type_of(event: Any) -> str:
    """An event's type name: its ``event_type`` when it has one, else its class name."""
    if isinstance(event, dict):
        return str(event.get("event_type") or event.get("type") or "")
    name = getattr(event, "event_type", None)
    return str(name) if name else type(event).__name__


@dataclass(frozen=True)
class Subscription:
    event_type: str
    handler: EventCallback = field(compare=False)
    id: int = 0


@runtime_checkable
class ChangeFeed(Protocol):
    """Something clients can subscribe to by event type (``"*"`` for all)."""

    async def subscribe(self, event_type: str, handler: EventCallback) -> Subscription: ...

    async def unsubscribe(self, subscription: Subscription) -> None: ...


class EventDispatcher:
    """Calls every handler subscribed to an event's type, then the wildcard ones.

    ``publish`` runs all handlers even if one fails and then raises an ``ExceptionGroup`` of
    the failures: one broken subscriber must neither starve the others nor go unnoticed.
    An event is matched on both its ``event_type`` and its class name, so subscribers may use
    either spelling.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[str, dict[int, Subscription]] = {}
        self._ids = itertools.count(1)

    async def subscribe(self, event_type: str, handler: EventCallback) -> Subscription:
        subscription = Subscription(event_type, handler, next(self._ids))
        self._subscriptions.setdefault(event_type, {})[subscription.id] = subscription
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.get(subscription.event_type, {}).pop(subscription.id, None)

    def subscribers(self, event: Any) -> list[Subscription]:
        names = dict.fromkeys([event_type_of(event), type(event).__name__, WILDCARD])
        found: dict[int, Subscription] = {}
        for name in names:
            found.update(self._subscriptions.get(name, {}))
        return list(found.values())

    async def publish(self, event: Any) -> None:
        errors: list[Exception] = []
        for subscription in self.subscribers(event):
            try:
                result = subscription.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup(f"{len(errors)} event handler(s) failed", errors)


__all__ = [
    "WILDCARD",
    "ChangeFeed",
    "EventCallback",
    "EventDispatcher",
    "Subscription",
    "event_type_of",
]
