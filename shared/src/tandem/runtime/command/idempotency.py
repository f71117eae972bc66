"""``Idempotency-Key`` on command requests: a replay gets the first response, appends nothing.

Implemented at the HTTP edge (pure ASGI) because what must be replayed is the *response* —
status, body and ``Location`` — including the id a create generated the first time.

Records live in MongoDB (``idempotency_keys`` in the write database), keyed by the caller's
identity and the key, so two clients cannot collide or read each other's responses. A request
first *claims* its key by inserting a ``pending`` record (the unique ``_id`` makes exactly one
of two concurrent requests win; the loser gets 409 ``idempotency_key_in_progress``), then
completes it with the response. Responses of 500 and above are not kept (the claim is released)
so the client can retry an outage with the same key.

Expiry is an ``expires_at`` field: a record past it is ignored and replaced on read (a TTL
index deletes within a minute, not at the instant), and :meth:`IdempotencyStore.purge_expired`
deletes the rest periodically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from bson.codec_options import CodecOptions
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.auth import AuthError, JWTVerifier
from tandem.runtime.command.handlers import STORE_DOWN
from tandem.runtime.command.metrics import IDEMPOTENT_REPLAYS
from tandem.runtime.command.middleware import error_body, send_json

log = structlog.get_logger("command_service.idempotency")
HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
# A pending claim older than this belongs to a request that died; it may be taken over.
PENDING_TIMEOUT = timedelta(seconds=60)
_REPLAYED_HEADERS = (b"content-type", b"location")
# The methods a command can arrive with. Any other (TRACE, CONNECT, a made-up one) goes straight
# to the router, which answers 405; a key must not turn that into a replay or a 422.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CODEC = CodecOptions[dict[str, Any]](tz_aware=True, tzinfo=UTC)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class Claimed:
    created_at: datetime


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class InProgress:
    pass


ClaimOutcome = Claimed | StoredResponse | Mismatch | InProgress


class IdempotencyStore:
    def __init__(self, database: AsyncDatabase[Any], collection: str, ttl: timedelta) -> None:
        self._records: AsyncCollection[dict[str, Any]] = database.get_collection(
            collection, codec_options=_CODEC
        )
        self.ttl = ttl

    async def ensure_indexes(self) -> None:
        await self._records.create_index("expires_at", name="expires_at")

    async def claim(self, key: str, fingerprint: str) -> ClaimOutcome:
        for _ in range(5):
            now = _now()
            try:
                await self._records.insert_one(
                    {
                        "_id": key,
                        "fingerprint": fingerprint,
                        "state": "pending",
                        "created_at": now,
                        "expires_at": now + self.ttl,
                    }
                )
            except DuplicateKeyError:
                existing = await self._records.find_one({"_id": key})
            else:
                return Claimed(now)
            if existing is None:  # expired and purged between our insert and read
                continue
            pending = existing["state"] == "pending"
            if existing["expires_at"] <= now or (
                pending and existing["created_at"] <= now - PENDING_TIMEOUT
            ):
                await self._records.delete_one({"_id": key, "created_at": existing["created_at"]})
                continue
            if existing["fingerprint"] != fingerprint:
                return Mismatch()
            if pending:
                return InProgress()
            return StoredResponse(
                existing["status"],
                [
                    (k.replace("_", "-").encode(), v.encode())
                    for k, v in existing["headers"].items()
                ],
                existing["body"].encode(),
            )
        return InProgress()

    async def complete(self, key: str, claim: Claimed, response: StoredResponse) -> None:
        await self._records.update_one(
            {"_id": key, "created_at": claim.created_at},
            {
                "$set": {
                    "state": "done",
                    "status": response.status,
                    # A sub-document of header names, not a list of pairs.
                    "headers": {
                        k.decode().replace("-", "_"): v.decode() for k, v in response.headers
                    },
                    "body": response.body.decode(),
                }
            },
        )

    async def release(self, key: str, claim: Claimed) -> None:
        await self._records.delete_one({"_id": key, "created_at": claim.created_at})

    async def purge_expired(self) -> int:
        result = await self._records.delete_many({"expires_at": {"$lte": _now()}})
        return result.deleted_count


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same request = same method, path and JSON value (key order and spacing do not count)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), canonical))).hexdigest()


def _routed(scope: Scope) -> bool:
    """Whether the router will hand this request to an endpoint. Only those bind a key: the 404
    or 405 of an unknown path or method stays a 404 or 405 whatever key it carries."""
    router = getattr(scope.get("app"), "router", None)
    if router is None:
        return True
    return any(route.matches(scope)[0] is Match.FULL for route in router.routes)


class IdempotencyMiddleware:
    """Applies to POST, PUT, PATCH and DELETE under one of ``prefixes`` (the served command
    routes) with an ``Idempotency-Key``."""

    def __init__(
        self,
        app: ASGIApp,
        store: IdempotencyStore,
        verifier: JWTVerifier,
        prefixes: tuple[str, ...] = ("/api/",),
    ) -> None:
        self.app = app
        self.store = store
        self.verifier = verifier
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or not scope["path"].startswith(self.prefixes)
            or not _routed(scope)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            await send_json(
                send,
                422,
                error_body(
                    "invalid_idempotency_key",
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                ),
            )
            return
        subject = self._subject(headers)
        if subject is None:  # unauthenticated: let the route answer 401/403, remember nothing
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        record_key = f"{subject}\n{key}"
        try:
            outcome = await self.store.claim(
                record_key, fingerprint(scope["method"], scope["path"], body)
            )
        except STORE_DOWN as exc:
            await send_json(send, 503, _store_down(exc))
            return
        if isinstance(outcome, StoredResponse):
            IDEMPOTENT_REPLAYS.inc()
            await _replay(send, outcome)
            return
        if isinstance(outcome, Mismatch):
            await send_json(
                send,
                422,
                error_body(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                ),
            )
            return
        if isinstance(outcome, InProgress):
            await send_json(
                send,
                409,
                error_body(
                    "idempotency_key_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                ),
                [(b"retry-after", b"1")],
            )
            return
        await self._run_and_remember(scope, send, body, record_key, outcome)

    async def _run_and_remember(
        self, scope: Scope, send: Send, body: bytes, record_key: str, claim: Claimed
    ) -> None:
        status = 500
        kept: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept.extend(
                    (k.lower(), v)
                    for k, v in message.get("headers", [])
                    if k.lower() in _REPLAYED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await self._forget(record_key, claim)
            raise
        if status >= 500:
            await self._forget(record_key, claim)
            return
        try:
            await self.store.complete(
                record_key, claim, StoredResponse(status, kept, b"".join(chunks))
            )
        except PyMongoError as exc:
            # The response is already sent and the command went through; the claim stays pending and expires after
            # PENDING_TIMEOUT, after which a retry runs again (and most likely gets a 409).
            log.warning("could not store idempotent response", error=repr(exc))

    async def _forget(self, record_key: str, claim: Claimed) -> None:
        try:
            await self.store.release(record_key, claim)
        except STORE_DOWN as exc:
            log.warning("could not release idempotency claim", error=repr(exc))

    def _subject(self, headers: dict[bytes, bytes]) -> str | None:
        if self.verifier.disabled:
            return "anonymous-dev"
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return self.verifier.decode(token.strip()).subject
        except AuthError:
            return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _replay(send: Send, stored: StoredResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": stored.status,
            "headers": [
                *stored.headers,
                (b"content-length", str(len(stored.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": stored.body})


def _store_down(exc: Exception) -> bytes:
    return error_body(
        "event_store_unavailable", f"the event store is unreachable ({type(exc).__name__})"
    )


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
