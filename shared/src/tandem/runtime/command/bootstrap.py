"""The command-service's one composition root: settings in, a running FastAPI app out.

Everything with a connection or a task is built here and nowhere else; tests call
:func:`create_app` with their own settings (a unique database and topic) and reach the wired
objects through ``app.state.service``.

Start-up never blocks on a dependency: index creation and the Kafka connection retry in the
background, so the process is live at once and ``/readyz`` says what it still waits for.
Commands are refused with 503 until the event store's unique index exists (writing without it
could let two writers share a version); they are accepted while Kafka is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pymongo import AsyncMongoClient
from tandem.aggregate import AggregateRepository
from tandem.auth import JWTVerifier
from tandem.event_store.mongo import MongoEventStore
from tandem.event_store.mongo_snapshots import MongoSnapshotStore
from tandem.mediator import Mediator
from tandem.observability import CorrelationIdMiddleware, PrometheusMiddleware, health_router
from tandem_catalog import Product
from tandem_catalog.events import CATALOG_REGISTRY

from tandem.runtime.command.api import product_routes
from tandem.runtime.command.asyncapi import build_asyncapi
from tandem.runtime.command.handlers import ProductHandlers
from tandem.runtime.command.idempotency import IdempotencyMiddleware, IdempotencyStore
from tandem.runtime.command.middleware import BodySizeLimitMiddleware, RetryAfterMiddleware
from tandem.runtime.command.publishing import KafkaEventSink, OutboxPublisher, OutboxRelay
from tandem.runtime.command.settings import CommandServiceSettings

SERVICE_NAME = "command-service"
log = structlog.get_logger("command_service")


@dataclass
class Service:
    """The wired object graph of one process."""

    settings: CommandServiceSettings
    mongo: AsyncMongoClient[dict[str, Any]]
    event_store: MongoEventStore
    idempotency: IdempotencyStore
    sink: KafkaEventSink
    publisher: OutboxPublisher
    relay: OutboxRelay
    handlers: ProductHandlers
    mediator: Mediator
    verifier: JWTVerifier
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def check_mongo(self) -> None:
        await self.mongo.admin.command("ping")
        if not self.handlers.ready:
            raise RuntimeError("event store indexes not created yet")

    async def prepare_store(self) -> None:
        """Create the indexes correctness depends on, retrying while MongoDB is down."""
        while True:
            try:
                await self.event_store.ensure_indexes()
                await self.idempotency.ensure_indexes()
            except Exception as exc:
                log.warning("mongodb not ready", error=repr(exc))
                await asyncio.sleep(self.settings.retry_backoff_seconds)
                continue
            self.handlers.ready = True
            log.info("event store ready", database=self.settings.mongo_write_db)
            return

    async def purge_idempotency_keys(self) -> None:
        while True:
            await asyncio.sleep(self.settings.idempotency_purge_interval_seconds)
            try:
                purged = await self.idempotency.purge_expired()
            except Exception as exc:  # only housekeeping: expired keys are ignored on read
                log.warning("idempotency purge failed", error=repr(exc))
            else:
                log.debug("idempotency keys purged", count=purged)

    async def start(self) -> None:
        jobs: list[Coroutine[Any, Any, None]] = [
            self.prepare_store(),
            self.sink.run_connect(),
            self.publisher.run(),
            self.relay.run(),
            self.purge_idempotency_keys(),
        ]
        self.tasks = [asyncio.create_task(job) for job in jobs]

    async def stop(self) -> None:
        """Publish what is queued (bounded), then stop; the relay covers anything left."""
        if self.sink.connected.is_set():
            await self.publisher.drain(timeout=5.0)
        for task in self.tasks:
            task.cancel()
        # Each step is bounded: a client stuck on a dead server must not hold the process
        # (or a test's teardown) past its grace period; what is not flushed is in the outbox.
        await _bounded(asyncio.gather(*self.tasks, return_exceptions=True), "background tasks")
        await _bounded(self.sink.close(), "kafka producer")
        await _bounded(self.mongo.close(), "mongodb client")


SHUTDOWN_STEP_SECONDS = 10.0


async def _bounded(step: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(step, SHUTDOWN_STEP_SECONDS)
    except TimeoutError:
        log.warning("shutdown step timed out", step=what, seconds=SHUTDOWN_STEP_SECONDS)


def build_service(settings: CommandServiceSettings) -> Service:
    """Wire everything; no I/O happens here (clients connect on first use, in the loop)."""
    timeout = settings.mongo_timeout_ms
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout, 10_000),
        maxPoolSize=settings.mongo_max_pool_size,
        tz_aware=True,
    )
    database = mongo[settings.mongo_write_db]
    event_store = MongoEventStore(database, settings.events_collection, registry=CATALOG_REGISTRY)
    sink = KafkaEventSink(
        settings.kafka_bootstrap_servers,
        settings.topic,
        partitions=settings.partitions,
        replication_factor=settings.topic_replication_factor,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=settings.kafka_linger_ms,
        retry_backoff=settings.retry_backoff_seconds,
    )
    publisher = OutboxPublisher(
        sink,
        event_store,
        batch_size=settings.publish_batch_size,
        queue_size=settings.publish_queue_size,
        retry_backoff=settings.retry_backoff_seconds,
    )
    snapshots = (
        MongoSnapshotStore(database, settings.snapshots_collection)
        if settings.snapshot_every
        else None
    )
    repository = AggregateRepository(
        Product,
        event_store,
        snapshot_store=snapshots,
        snapshot_every=max(settings.snapshot_every, 1),
        cache_size=settings.aggregate_cache_size,
    )
    handlers = ProductHandlers(repository, publisher.submit)
    mediator = Mediator()
    for command_type, handler in handlers.handlers().items():
        mediator.register_command_handler(command_type, handler)
    commits = database[settings.events_collection]

    async def unpublished() -> int:
        return await commits.count_documents({"published": False})

    relay = OutboxRelay(
        sink,
        event_store,
        interval=settings.relay_interval_seconds,
        grace=timedelta(seconds=settings.relay_grace_seconds),
        batch_size=settings.relay_batch_size,
        backlog=unpublished,
    )
    return Service(
        settings=settings,
        mongo=mongo,
        event_store=event_store,
        idempotency=IdempotencyStore(
            database,
            settings.idempotency_collection,
            timedelta(seconds=settings.idempotency_ttl_seconds),
        ),
        sink=sink,
        publisher=publisher,
        relay=relay,
        handlers=handlers,
        mediator=mediator,
        verifier=JWTVerifier(settings),
    )


async def _error_body_http_exception(request: Request, exc: Exception) -> Response:
    """Auth answers ``HTTPException(detail={"error": ...})``; send the error body unwrapped so
    every error of this service has the same top-level shape."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc.detail, dict) and "error" in exc.detail:
        return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    return await http_exception_handler(request, exc)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body, made safe to encode. The library's body parser already refuses
    ``NaN`` and ``1e400`` (infinity); this is defence in depth, because echoing such an input
    back in the error would fail to serialize and turn a client's mistake into a 500."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


def create_app(settings: CommandServiceSettings | None = None) -> FastAPI:
    settings = settings or CommandServiceSettings()
    service = build_service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Tandem command-service",
        version="1.0.0",
        description=(
            "The product catalog's write API. Every command answers the product id and its new "
            "version; reads are the query-service's. Events: see /asyncapi.json."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.mediator = service.mediator  # read by tandem.api.get_mediator
    app.add_exception_handler(HTTPException, _error_body_http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(product_routes(service.verifier))
    app.include_router(health_router({"mongodb": service.check_mongo, "kafka": service.sink.check}))
    asyncapi_document = build_asyncapi(settings.topic, settings.partitions)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI 3 document of the topic")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document

    # Added innermost first: the request meets them in the opposite order.
    app.add_middleware(IdempotencyMiddleware, store=service.idempotency, verifier=service.verifier)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RetryAfterMiddleware, seconds=settings.retry_after_seconds)
    if settings.allowed_origins:
        # Outside the idempotency and size middlewares, so that a preflight (OPTIONS) is
        # answered here and every answer, errors included, carries the CORS headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["POST", "PATCH"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "X-Correlation-ID",
            ],
            expose_headers=["Location", "ETag", "X-Correlation-ID", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(PrometheusMiddleware, service=SERVICE_NAME)
    app.add_middleware(CorrelationIdMiddleware)
    return app
