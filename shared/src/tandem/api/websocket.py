"""A generic WebSocket endpoint streaming events from a :class:`~tandem.dispatch.ChangeFeed`.

Protocol (server -> client, JSON text frames):

* ``{"type": "subscribed", "event_types": [...]}`` once, after authentication and subscription;
* ``{"type": "event", "event_type": ..., "data": {...}}`` per event (``data`` is the event's
  ``to_dict()``, so it carries ``aggregate_id`` and ``version`` for gap detection);
* ``{"type": "heartbeat"}`` after ``heartbeat_interval`` seconds without traffic.

Clients pick types with ``?event_types=A,B`` (default: all allowed). Authentication runs as a
FastAPI dependency before the socket is accepted; it should raise
``fastapi.WebSocketException(code=1008)`` to refuse. Each client has a bounded queue; a client
that falls ``queue_size`` events behind is closed with 1013 ("try again later") so it resyncs,
instead of slowing the producer or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from starlette import status

from tandem.dispatch import WILDCARD, ChangeFeed, Subscription, event_type_of

MessageBuilder = Callable[[Any], dict[str, Any]]
CLOSE_SLOW_CLIENT = status.WS_1013_TRY_AGAIN_LATER
_DROPPED = object()


def default_message(event: Any) -> dict[str, Any]:
    if hasattr(event, "to_dict"):
        data = event.to_dict()
    elif isinstance(event, BaseModel):
        data = event.model_dump(mode="json")
    else:
        data = dict(event)
    return {"type": "event", "event_type": event_type_of(event), "data": data}


def resolve_event_types(requested: str | None, allowed: list[str] | None) -> list[str]:
    wanted = [name.strip() for name in (requested or "").split(",") if name.strip()]
    if allowed is None:
        return wanted or [WILDCARD]
    return [name for name in wanted if name in allowed] if wanted else list(allowed)


class _ClientQueue:
    """Bounded per-client buffer; on overflow it empties itself and queues the drop marker."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)
        self.dropped = False

    async def put(self, event: Any) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_DROPPED)


async def _send_loop(
    websocket: WebSocket, client: _ClientQueue, heartbeat: float, build: MessageBuilder
) -> None:
    while True:
        try:
            event = await asyncio.wait_for(client.queue.get(), timeout=heartbeat)
        except TimeoutError:
            await websocket.send_json({"type": "heartbeat"})
            continue
        if event is _DROPPED:
            await websocket.close(code=CLOSE_SLOW_CLIENT, reason="client too slow")
            return
        await websocket.send_json(build(event))


async def _receive_loop(websocket: WebSocket) -> None:
    # Reading is how a disconnect is noticed; a "ping" text gets a "pong".
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            if await websocket.receive_text() == "ping":
                await websocket.send_json({"type": "pong"})


def create_websocket_endpoint(
    router: APIRouter | FastAPI,
    path: str,
    event_dispatcher: ChangeFeed,
    auth_dependency: Callable[..., Any] | None = None,
    allowed_event_types: list[str] | None = None,
    *,
    queue_size: int = 100,
    heartbeat_interval: float = 15.0,
    message_builder: MessageBuilder = default_message,
) -> Callable[..., Any]:
    async def websocket_endpoint(websocket: WebSocket, event_types: str | None = None) -> None:
        names = resolve_event_types(event_types, allowed_event_types)
        if not names:
            await websocket.close(
                code=status.WS_1008_POLICY_VIOLATION, reason="no allowed event type"
            )
            return
        await websocket.accept()
        client = _ClientQueue(queue_size)
        subscriptions: list[Subscription] = []
        try:
            for name in names:
                subscriptions.append(await event_dispatcher.subscribe(name, client.put))
            await websocket.send_json({"type": "subscribed", "event_types": names})
            tasks = [
                asyncio.create_task(
                    _send_loop(websocket, client, heartbeat_interval, message_builder)
                ),
                asyncio.create_task(_receive_loop(websocket)),
            ]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not isinstance(task.exception(), WebSocketDisconnect | None):
                    task.result()
        finally:
            for subscription in subscriptions:
                await event_dispatcher.unsubscribe(subscription)

    router.add_api_websocket_route(
        path,
        websocket_endpoint,
        dependencies=[Depends(auth_dependency)] if auth_dependency else None,
    )
    return websocket_endpoint
