"""The live WebSocket endpoint: one frame protocol over any :class:`~tandem.dispatch.ChangeFeed`.

``CQRSEndpointFactory.create_websocket_endpoint(router, path, event_dispatcher,
allowed_event_types)`` registers it. Given the query runtime's Redis change feed it is the
distributed live endpoint; given an in-process :class:`~tandem.dispatch.EventDispatcher` it
speaks the same protocol in tests and single-process apps. The protocol (also in
docs/query-service.md), server -> client, JSON text frames:

* ``{"type": "subscribed", "event_types": [...]}`` (plus ``"ids"`` when the client named
  some) after authentication, and again after each ``subscribe`` message;
* ``{"type": "change", "read_model", "id", "version", "event_type", "changed_fields", ...}``
  per read-model change notice, or ``{"type": "event", "event_type", "data"}`` per raw domain
  event (``data`` is its ``to_dict()``: ``aggregate_id`` and ``version`` for gap detection);
* ``{"type": "snapshot", "id", "version", "document"}`` and then
  ``{"type": "resync_done", "checked", "sent"}`` answering ``versions`` (what a client holds):
  only what is newer, ``document: null`` for what no longer exists;
* ``{"type": "resync_required"}`` when the feed may have lost messages (re-send ``resync``);
* ``{"type": "heartbeat", "ts"}`` every ``heartbeat_interval`` seconds; ``{"type": "pong"}``.

Client -> server: the subscription in the query string (``event_types=A,B``, ``ids=x,y``) or
in the first message; ``subscribe``, ``resync``, ``ping`` (or the text ``ping``) later.
Authentication is either a FastAPI dependency run before the socket is accepted
(``auth_dependency``; it raises ``WebSocketException(1008)`` to refuse) or an
:class:`Authenticator` (a JWT in a first ``{"type": "auth", "token"}`` message, or a
short-lived ``ticket`` in the URL). Unknown event types are refused with 1008. Each client has
a bounded queue; one that falls ``queue_size`` frames behind is closed with 1013 so it
resyncs, instead of slowing the feed or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol, TypeVar

import orjson
from fastapi import APIRouter, Depends, FastAPI, WebSocket, WebSocketDisconnect
from prometheus_client import REGISTRY, Counter, Gauge
from pydantic import BaseModel
from starlette import status

from tandem.auth import AuthError
from tandem.dispatch import WILDCARD, ChangeFeed, Subscription, event_type_of
from tandem.runtime.contract import ChangeNotice

MessageBuilder = Callable[[Any], dict[str, Any]]
Snapshotter = Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]
CLOSE_POLICY = status.WS_1008_POLICY_VIOLATION  # authentication or subscription refused
CLOSE_UNSUPPORTED = status.WS_1003_UNSUPPORTED_DATA  # a message the server cannot parse
CLOSE_SLOW_CLIENT = status.WS_1013_TRY_AGAIN_LATER  # the client's queue overflowed
RESYNC_REQUIRED = '{"type":"resync_required","reason":"notices lost"}'

C = TypeVar("C")


def _collector(factory: Callable[..., C], name: str, doc: str, *args: Any) -> C:
    # Process-wide, and tests build many apps in one process: create once, then reuse.
    existing = REGISTRY._names_to_collectors.get(name)
    return existing if existing is not None else factory(name, doc, *args)  # type: ignore[return-value]


WS_CLIENTS = _collector(Gauge, "tandem_query_ws_clients", "Connected WebSocket clients")
WS_SENT = _collector(Counter, "tandem_query_ws_messages_sent_total", "WebSocket frames sent")
WS_DROPPED = _collector(
    Counter,
    "tandem_query_ws_messages_dropped_total",
    "WebSocket frames discarded because a client's queue overflowed",
)
WS_CLOSED = _collector(
    Counter,
    "tandem_query_ws_closed_total",
    "WebSocket connections closed by the server, by close code",
    ["code"],
)


class Authenticator(Protocol):
    """First-message / ticket authentication; raises :class:`~tandem.auth.AuthError`."""

    def token(self, token: Any) -> object: ...

    def ticket(self, ticket: str) -> object: ...


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def default_message(event: Any) -> dict[str, Any]:
    """The frame of a raw message: a change notice is a ``change``, anything else an ``event``."""
    if isinstance(event, ChangeNotice):
        return {"type": "change", **event.model_dump(mode="json")}
    if hasattr(event, "to_dict"):
        data = event.to_dict()
    elif isinstance(event, BaseModel):
        data = event.model_dump(mode="json")
    else:
        data = dict(event)
    return {"type": "event", "event_type": event_type_of(event), "data": data}


def _dumps(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def frame_of(message: Any, build: MessageBuilder | None) -> str:
    """A message's text frame: pre-serialized by a feed (``ws_frame``, once for every client)
    unless the endpoint has its own builder."""
    if build is None:
        frame = getattr(message, "ws_frame", None)
        if isinstance(frame, str):
            return frame
        return _dumps(default_message(message))
    return _dumps(build(message))


def message_id(message: Any) -> str | None:
    """What an ``ids`` filter matches: a notice's ``id``, an event's ``aggregate_id``."""
    if isinstance(message, dict):
        value = message.get("id", message.get("aggregate_id"))
    else:
        value = getattr(message, "id", None) or getattr(message, "aggregate_id", None)
    return str(value) if value is not None else None


class LiveClient:
    """One connection's bounded frame queue; its own sender drains it, so a slow client only
    ever blocks itself."""

    __slots__ = ("dropped", "event_types", "frames", "ids", "limit", "sender", "wakeup")

    def __init__(
        self, limit: int, event_types: Collection[str], ids: Collection[str] | None
    ) -> None:
        self.limit = limit
        self.event_types = frozenset(event_types)
        self.ids = frozenset(ids) if ids else None
        self.frames: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.dropped = False
        self.sender: asyncio.Task[None] | None = None

    def offer(self, frame: str) -> None:
        """Queue a change frame; on overflow drop the client (never block the feed)."""
        if self.dropped:
            return
        if len(self.frames) >= self.limit:
            self.drop()
            return
        self.frames.append(frame)
        self.wakeup.set()

    def control(self, frame: str) -> None:
        """Queue a reply (pong, snapshot, heartbeat): not counted against the limit."""
        if not self.dropped:
            self.frames.append(frame)
            self.wakeup.set()

    def drop(self) -> None:
        WS_DROPPED.inc(len(self.frames) + 1)
        self.dropped = True
        self.frames.clear()
        self.wakeup.set()
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()


def _names(value: Any) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` -> list; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise ProtocolError(CLOSE_POLICY, "filters must be a list of strings")


def _versions(value: Any, limit: int) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > limit:
        raise ProtocolError(CLOSE_POLICY, f"versions must be an object of at most {limit} ids")
    try:
        return {str(key): int(version) for key, version in value.items()}
    except (TypeError, ValueError):
        raise ProtocolError(CLOSE_POLICY, "versions must map ids to integers") from None


class _Endpoint:
    """The state one registered endpoint shares between its connections."""

    def __init__(
        self,
        feed: ChangeFeed,
        allowed: list[str] | None,
        authenticator: Authenticator | None,
        snapshots: Snapshotter | None,
        build: MessageBuilder | None,
        *,
        queue_size: int,
        heartbeat_interval: float,
        auth_deadline: float,
        max_ids: int,
    ) -> None:
        self.feed = feed
        self.allowed = allowed
        self.authenticator = authenticator
        self.snapshots = snapshots
        self.build = build
        self.queue_size = queue_size
        self.heartbeat_interval = heartbeat_interval
        self.auth_deadline = auth_deadline
        self.max_ids = max_ids
        self.clients: set[LiveClient] = set()
        self._heartbeats: asyncio.Task[None] | None = None

    def subscription(self, source: dict[str, Any]) -> tuple[list[str], list[str] | None]:
        requested = _names(source.get("event_types"))
        if self.allowed is None:
            event_types = requested or [WILDCARD]
        else:
            event_types = requested or list(self.allowed)
            unknown = [name for name in event_types if name not in self.allowed]
            if unknown:
                raise ProtocolError(CLOSE_POLICY, f"unknown event type(s): {', '.join(unknown)}")
        ids = _names(source.get("ids"))
        if ids is not None and len(ids) > self.max_ids:
            raise ProtocolError(CLOSE_POLICY, f"at most {self.max_ids} ids")
        return event_types, ids or None

    async def authenticate(self, websocket: WebSocket) -> dict[str, Any]:
        """The subscription request, once the client is authenticated; nothing sent before."""
        query = dict(websocket.query_params)
        if self.authenticator is None:
            return query
        ticket = query.pop("ticket", None)
        if ticket:
            self.authenticator.ticket(ticket)
            return query
        try:
            async with asyncio.timeout(self.auth_deadline):
                raw = await websocket.receive_text()
        except TimeoutError:
            raise AuthError("auth_timeout", "no authentication message in time") from None
        try:
            first = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AuthError("invalid_auth_message", "first message must be JSON") from None
        if not isinstance(first, dict) or first.get("type") != "auth":
            raise AuthError("missing_auth", 'first message must be {"type": "auth", ...}')
        self.authenticator.token(first.get("token"))
        return {**query, **{key: value for key, value in first.items() if key != "token"}}

    async def subscribe(self, client: LiveClient) -> list[Subscription]:
        ids, build = client.ids, self.build

        def deliver(message: Any) -> None:
            if ids is None or message_id(message) in ids:
                client.offer(frame_of(message, build))

        return [await self.feed.subscribe(name, deliver) for name in client.event_types]

    async def resync(self, client: LiveClient, versions: dict[str, int]) -> None:
        ids = list(dict.fromkeys([*versions, *(client.ids or ())]))[: self.max_ids]
        current = await self.snapshots(ids) if self.snapshots is not None else {}
        sent = 0
        for document_id in ids:
            document = current.get(document_id)
            known = versions.get(document_id)
            if document is None:
                if known is None:
                    continue
                frame = {"type": "snapshot", "id": document_id, "version": None, "document": None}
            elif known is not None and int(document["version"]) <= known:
                continue
            else:
                frame = {
                    "type": "snapshot",
                    "id": document_id,
                    "version": document["version"],
                    "document": document,
                }
            client.control(_dumps(frame))
            sent += 1
        client.control(_dumps({"type": "resync_done", "checked": len(ids), "sent": sent}))

    def add(self, client: LiveClient) -> None:
        self.clients.add(client)
        WS_CLIENTS.inc()
        if self._heartbeats is None or self._heartbeats.done():
            self._heartbeats = asyncio.create_task(self._beat(), name="ws-heartbeats")

    def remove(self, client: LiveClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            WS_CLIENTS.dec()
        if not self.clients and self._heartbeats is not None:
            self._heartbeats.cancel()
            self._heartbeats = None

    def resync_required(self) -> None:
        """The feed may have lost messages (a reconnect): every client should resync."""
        for client in list(self.clients):
            client.control(RESYNC_REQUIRED)

    async def _beat(self) -> None:
        # One timer per endpoint, not one per client.
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            frame = _dumps({"type": "heartbeat", "ts": time.time()})
            for client in list(self.clients):
                client.control(frame)


def _subscribed(event_types: list[str], ids: list[str] | None) -> str:
    reply: dict[str, Any] = {"type": "subscribed", "event_types": event_types}
    if ids is not None:
        reply["ids"] = ids
    return _dumps(reply)


async def _send_loop(websocket: WebSocket, client: LiveClient) -> None:
    frames = client.frames
    while True:
        await client.wakeup.wait()
        client.wakeup.clear()
        if client.dropped:
            return
        count = 0
        while frames:
            await websocket.send({"type": "websocket.send", "text": frames.popleft()})
            count += 1
        if count:
            WS_SENT.inc(count)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    WS_CLOSED.labels(str(code)).inc()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await websocket.close(code=code, reason=reason[:120])


def create_websocket_endpoint(
    router: APIRouter | FastAPI,
    path: str,
    event_dispatcher: ChangeFeed,
    auth_dependency: Callable[..., Any] | None = None,
    allowed_event_types: Collection[str] | None = None,
    *,
    authenticator: Authenticator | None = None,
    snapshots: Snapshotter | None = None,
    queue_size: int = 256,
    heartbeat_interval: float = 15.0,
    auth_deadline: float = 5.0,
    max_ids: int = 1000,
    message_builder: MessageBuilder | None = None,
) -> Callable[..., Any]:
    """Register the live endpoint at ``path`` (see the module docstring for the protocol).

    ``snapshots(ids)`` returns the current documents by id (API shape, with ``version``) for
    resyncs; without it a resync answers ``resync_done`` with nothing sent. A feed that can
    lose messages calls the returned endpoint's ``resync_required()`` after it reconnects.
    """
    state = _Endpoint(
        event_dispatcher,
        list(allowed_event_types) if allowed_event_types is not None else None,
        authenticator,
        snapshots,
        message_builder,
        queue_size=queue_size,
        heartbeat_interval=heartbeat_interval,
        auth_deadline=auth_deadline,
        max_ids=max_ids,
    )

    async def receive_loop(websocket: WebSocket, client: LiveClient, subs: list[Any]) -> None:
        while True:
            raw = await websocket.receive_text()
            if raw == "ping":
                client.control('{"type":"pong"}')
                continue
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ProtocolError(CLOSE_UNSUPPORTED, "messages must be JSON") from None
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                client.control('{"type":"pong"}')
            elif kind == "subscribe":
                event_types, ids = state.subscription(message)
                for subscription in subs:
                    await state.feed.unsubscribe(subscription)
                client.event_types = frozenset(event_types)
                client.ids = frozenset(ids) if ids else None
                subs[:] = await state.subscribe(client)
                client.control(_subscribed(event_types, ids))
            elif kind == "resync":
                await state.resync(client, _versions(message.get("versions"), max_ids))
            elif kind == "auth":
                continue  # a repeated auth message is harmless
            else:
                raise ProtocolError(CLOSE_UNSUPPORTED, f"unknown message type {kind!r}")

    async def websocket_endpoint(websocket: WebSocket) -> None:
        if authenticator is None:
            # Nothing to read first: refuse a bad subscription before accepting, so the
            # client sees the refusal as the handshake's answer.
            try:
                state.subscription(dict(websocket.query_params))
            except ProtocolError as exc:
                await websocket.close(code=exc.code, reason=exc.reason[:120])
                return
        await websocket.accept()
        try:
            request = await state.authenticate(websocket)
            event_types, ids = state.subscription(request)
            versions = _versions(request.get("versions"), max_ids)
        except AuthError as exc:
            await _close(websocket, CLOSE_POLICY, f"{exc.code}: {exc.message}")
            return
        except ProtocolError as exc:
            await _close(websocket, exc.code, exc.reason)
            return
        except WebSocketDisconnect:
            return
        client = LiveClient(queue_size, event_types, ids)
        client.control(_subscribed(event_types, ids))
        subs = await state.subscribe(client)
        state.add(client)
        sender = asyncio.create_task(_send_loop(websocket, client))
        client.sender = sender
        receiver = asyncio.create_task(receive_loop(websocket, client, subs))
        try:
            if versions or ids:
                await state.resync(client, versions)
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # No await before the tasks are told to stop: a cancelled server (shutdown) must
            # not be cancelled again inside its own clean-up.
            state.remove(client)
            for task in (sender, receiver):
                task.cancel()
            for subscription in subs:
                await state.feed.unsubscribe(subscription)
        # The one still running was cancelled above and ends on its own; waiting for it here
        # would give a shutting-down server a second cancellation to trip over.
        outcomes = [
            task.exception() if not task.cancelled() else None
            for task in (sender, receiver)
            if task.done()
        ]
        if client.dropped:
            await _close(websocket, CLOSE_SLOW_CLIENT, "client too slow; resync and reconnect")
            return
        for outcome in outcomes:
            if isinstance(outcome, ProtocolError):
                await _close(websocket, outcome.code, outcome.reason)
                return
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, WebSocketDisconnect | asyncio.CancelledError
            ):
                await _close(websocket, status.WS_1011_INTERNAL_ERROR, "internal error")
                raise outcome

    websocket_endpoint.resync_required = state.resync_required  # type: ignore[attr-defined]
    websocket_endpoint.clients = state.clients  # type: ignore[attr-defined]
    router.add_api_websocket_route(
        path,
        websocket_endpoint,
        dependencies=[Depends(auth_dependency)] if auth_dependency else None,
    )
    return websocket_endpoint
