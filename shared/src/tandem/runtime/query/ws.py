"""``/ws/{read model}``: authenticated, filtered, resyncable stream of a live read model's
changes. The protocol and close codes are documented in ``docs/query-service.md``; snapshot
frames carry the document under ``"document"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from starlette import status

from tandem.auth import AuthError, JWTVerifier, Principal
from tandem.runtime.query.fanout import FanOut, WsClient
from tandem.runtime.query.metrics import WS_CLOSED, WS_SENT

TICKET_SCOPE = "ws:ticket"
CLOSE_POLICY = status.WS_1008_POLICY_VIOLATION  # authentication or subscription refused
CLOSE_UNSUPPORTED = status.WS_1003_UNSUPPORTED_DATA  # a message the server cannot parse
CLOSE_SLOW_CLIENT = status.WS_1013_TRY_AGAIN_LATER  # the client's queue overflowed
Snapshotter = Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WsAuthenticator:
    """JWT with the read model's scope (first message) or a short-lived ticket (URL).

    A ticket is a JWT carrying ``ws:ticket`` as well, at most ``ticket_ttl`` seconds long and
    accepted once per process, so a URL that leaks into a log is worthless within seconds.
    """

    def __init__(self, verifier: JWTVerifier, ticket_ttl: int, scope: str) -> None:
        self.verifier = verifier
        self.ticket_ttl = ticket_ttl
        self.scope = scope
        self._used: dict[str, float] = {}

    def for_scope(self, scope: str) -> WsAuthenticator:
        """Another read model's authenticator sharing this one's spent tickets."""
        other = WsAuthenticator(self.verifier, self.ticket_ttl, scope)
        other._used = self._used
        return other

    def token(self, token: Any) -> Principal:
        return self.verifier.authorize(token if isinstance(token, str) else None, self.scope)

    def ticket(self, ticket: str) -> Principal:
        principal = self.verifier.authorize(ticket, self.scope, TICKET_SCOPE)
        if self.verifier.disabled:
            return principal
        claims = principal.claims
        lifetime = int(claims.get("exp", 0)) - int(claims.get("iat", 0))
        if lifetime > self.ticket_ttl:
            raise AuthError("invalid_ticket", "a ticket must be short-lived", 401)
        jti = str(claims.get("jti", ""))
        now = time.time()
        self._used = {key: exp for key, exp in self._used.items() if exp > now}
        if not jti or jti in self._used:
            raise AuthError("invalid_ticket", "ticket already used", 401)
        self._used[jti] = float(claims.get("exp", now))
        return principal


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


def _dumps(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def create_live_endpoint(
    router: APIRouter | FastAPI,
    path: str,
    fanout: FanOut,
    authenticator: WsAuthenticator,
    allowed_event_types: Collection[str],
    *,
    snapshots: Snapshotter,
    queue_size: int = 256,
    auth_deadline: float = 5.0,
    max_ids: int = 1000,
) -> Callable[[WebSocket], Awaitable[None]]:
    allowed = tuple(allowed_event_types)

    def subscription(source: dict[str, Any]) -> tuple[list[str], list[str] | None]:
        event_types = _names(source.get("event_types")) or list(allowed)
        unknown = [name for name in event_types if name not in allowed]
        if unknown:
            raise ProtocolError(CLOSE_POLICY, f"unknown event type(s): {', '.join(unknown)}")
        ids = _names(source.get("ids"))
        if ids is not None and len(ids) > max_ids:
            raise ProtocolError(CLOSE_POLICY, f"at most {max_ids} ids")
        return event_types, ids or None

    async def authenticate(websocket: WebSocket) -> dict[str, Any]:
        """The subscription request, once the client is authenticated; nothing sent before."""
        query = dict(websocket.query_params)
        ticket = query.pop("ticket", None)
        if ticket:
            authenticator.ticket(ticket)
            return query
        try:
            async with asyncio.timeout(auth_deadline):
                raw = await websocket.receive_text()
        except TimeoutError:
            raise AuthError("auth_timeout", "no authentication message in time") from None
        try:
            first = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AuthError("invalid_auth_message", "first message must be JSON") from None
        if not isinstance(first, dict) or first.get("type") != "auth":
            raise AuthError("missing_auth", 'first message must be {"type": "auth", ...}')
        authenticator.token(first.get("token"))
        return {**query, **{key: value for key, value in first.items() if key != "token"}}

    async def resync(client: WsClient, versions: dict[str, int]) -> None:
        ids = list(dict.fromkeys([*versions, *(client.ids or ())]))[:max_ids]
        current = await snapshots(ids)
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

    async def send_loop(websocket: WebSocket, client: WsClient) -> None:
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

    async def receive_loop(websocket: WebSocket, client: WsClient) -> None:
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
                event_types, ids = subscription(message)
                client.event_types, client.ids = (
                    frozenset(event_types),
                    (frozenset(ids) if ids else None),
                )
                client.control(
                    _dumps({"type": "subscribed", "event_types": event_types, "ids": ids})
                )
            elif kind == "resync":
                await resync(client, _versions(message.get("versions"), max_ids))
            elif kind == "auth":
                continue  # a repeated auth message is harmless
            else:
                raise ProtocolError(CLOSE_UNSUPPORTED, f"unknown message type {kind!r}")

    async def close(websocket: WebSocket, code: int, reason: str) -> None:
        WS_CLOSED.labels(str(code)).inc()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await websocket.close(code=code, reason=reason[:120])

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            request = await authenticate(websocket)
            event_types, ids = subscription(request)
            versions = _versions(request.get("versions"), max_ids)
        except AuthError as exc:
            await close(websocket, CLOSE_POLICY, f"{exc.code}: {exc.message}")
            return
        except ProtocolError as exc:
            await close(websocket, exc.code, exc.reason)
            return
        except WebSocketDisconnect:
            return
        client = WsClient(queue_size, event_types, ids)
        client.control(_dumps({"type": "subscribed", "event_types": event_types, "ids": ids}))
        fanout.add(client)
        sender = asyncio.create_task(send_loop(websocket, client))
        client.sender = sender
        receiver = asyncio.create_task(receive_loop(websocket, client))
        try:
            if versions or ids:
                await resync(client, versions)
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            fanout.remove(client)
            for task in (sender, receiver):
                task.cancel()
            outcomes = await asyncio.gather(sender, receiver, return_exceptions=True)
        if client.dropped:
            await close(websocket, CLOSE_SLOW_CLIENT, "client too slow; resync and reconnect")
            return
        for outcome in outcomes:
            if isinstance(outcome, ProtocolError):
                await close(websocket, outcome.code, outcome.reason)
                return
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, WebSocketDisconnect | asyncio.CancelledError
            ):
                await close(websocket, status.WS_1011_INTERNAL_ERROR, "internal error")
                raise outcome

    router.add_api_websocket_route(path, endpoint)
    return endpoint
