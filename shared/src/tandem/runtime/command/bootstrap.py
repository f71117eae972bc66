"""The command runtime's one composition root: settings and apps in, a running FastAPI app out.

Everything with a connection or a task is built here and nowhere else; tests call
:func:`create_app` with their own settings (a unique database and topic prefix) and, if they
like, their own apps, and reach the wired objects through ``app.state.service``.

Per app: one event store on ``App.events_collection`` (its commits are the outbox), one outbox
publisher and relay, one :class:`AggregateCommandHandler` per aggregate type. Per process: one
MongoDB client, one Kafka producer routing each commit to its aggregate type's topic, one
idempotency store, one gate.

Start-up never blocks on a dependency: index creation and the Kafka connection retry in the
background, so the process is live at once and ``/readyz`` says what it still waits for.
Commands are refused with 503 until the event stores' unique indexes exist (writing without
them could let two writers share a version); they are accepted while Kafka is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
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
from pymongo.asynchronous.database import AsyncDatabase

from tandem.aggregate import AggregateRepository, AggregateRoot
from tandem.app import AggregateSpec, App
from tandem.auth import JWTVerifier
from tandem.event_store import EventStore
from tandem.event_store.mongo import MongoEventStore
from tandem.event_store.mongo_snapshots import MongoSnapshotStore
from tandem.mediator import Mediator
from tandem.observability import CorrelationIdMiddleware, PrometheusMiddleware, health_router
from tandem.runtime.command.api import command_routes
from tandem.runtime.command.asyncapi import build_asyncapi
from tandem.runtime.command.handlers import AggregateCommandHandler, StoreGate
from tandem.runtime.command.idempotency import IdempotencyMiddleware, IdempotencyStore
from tandem.runtime.command.middleware import BodySizeLimitMiddleware, RetryAfterMiddleware
from tandem.runtime.command.publishing import KafkaEventSink, OutboxPublisher, OutboxRelay
from tandem.runtime.command.settings import CommandServiceSettings

SERVICE_NAME = "command-service"
log = structlog.get_logger("tandem.runtime.command")


@dataclass
class AppWriter:
    """One app's write side: its event store (and outbox), publisher, relay and handlers."""

    app: App
    event_store: EventStore
    publisher: OutboxPublisher
    relay: OutboxRelay
    handlers: list[AggregateCommandHandler]


@dataclass
class Service:
    """The wired object graph of one process."""

    settings: CommandServiceSettings
    apps: list[App]
    mongo: AsyncMongoClient[dict[str, Any]]
    writers: list[AppWriter]
    idempotency: IdempotencyStore
    sink: KafkaEventSink
    gate: StoreGate
    mediator: Mediator
    verifier: JWTVerifier
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def writer(self, name: str | None = None) -> AppWriter:
        """The writer of app ``name`` (or of the only app)."""
        if name is None:
            if len(self.writers) != 1:
                raise LookupError("several apps are served: name one")
            return self.writers[0]
        return next(w for w in self.writers if w.app.name == name)

    def topic(self, spec: AggregateSpec) -> str:
        return self.settings.topic_prefix + spec.topic

    async def check_mongo(self) -> None:
        await self.mongo.admin.command("ping")
        if not self.gate.ready:
            raise RuntimeError("event store indexes not created yet")

    async def prepare_store(self) -> None:
        """Create the indexes correctness depends on, retrying while MongoDB is down."""
        while True:
            try:
                for writer in self.writers:
                    if isinstance(writer.event_store, MongoEventStore):
                        await writer.event_store.ensure_indexes()
                await self.idempotency.ensure_indexes()
            except Exception as exc:
                log.warning("mongodb not ready", error=repr(exc))
                await asyncio.sleep(self.settings.retry_backoff_s)
                continue
            self.gate.ready = True
            log.info("event store ready", database=self.settings.mongo_write_db)
            return

    async def purge_idempotency_keys(self) -> None:
        while True:
            await asyncio.sleep(self.settings.idempotency_purge_interval_s)
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
            self.purge_idempotency_keys(),
        ]
        for writer in self.writers:
            jobs += [writer.publisher.run(), writer.relay.run()]
        self.tasks = [asyncio.create_task(job) for job in jobs]

    async def stop(self) -> None:
        """Publish what is queued (bounded), then stop; the relay covers anything left."""
        if self.sink.connected.is_set():
            for writer in self.writers:
                await writer.publisher.drain(timeout=5.0)
        for task in self.tasks:
            task.cancel()
        # Each step is bounded: a client stuck on a dead server must not hold the process
        # (or a test's teardown) past its grace period; what is not flushed is in the outbox.
        await _bounded(asyncio.gather(*self.tasks, return_exceptions=True), "background tasks")
        await _bounded(self.sink.close(), "kafka producer")
        await _bounded(self.mongo.close(), "mongodb client")


SHUTDOWN_STEP_S = 10.0


async def _bounded(step: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(step, SHUTDOWN_STEP_S)
    except TimeoutError:
        log.warning("shutdown step timed out", step=what, seconds=SHUTDOWN_STEP_S)


def _writer(
    app: App,
    settings: CommandServiceSettings,
    database: AsyncDatabase[dict[str, Any]],
    sink: KafkaEventSink,
    gate: StoreGate,
    *,
    event_store: EventStore | None,
) -> AppWriter:
    backlog: Callable[[], Awaitable[int]] | None = None
    if event_store is None:
        event_store = MongoEventStore(database, app.events_collection, registry=app.registry)
        commits = database[app.events_collection]

        async def unpublished() -> int:
            return await commits.count_documents({"published": False})

        backlog = unpublished
    publisher = OutboxPublisher(
        sink,
        event_store,
        batch_size=settings.publish_batch_size,
        queue_size=settings.publish_queue_size,
        retry_backoff=settings.retry_backoff_s,
    )
    # Snapshots live beside the commits: an in-memory event store (unit tests) gets none.
    snapshots = (
        MongoSnapshotStore(database, f"{app.name}_{settings.snapshots_collection}")
        if settings.snapshot_every and backlog is not None
        else None
    )
    handlers = [
        AggregateCommandHandler(
            spec,
            AggregateRepository[AggregateRoot](
                spec.aggregate,
                event_store,
                snapshot_store=snapshots,
                snapshot_every=max(settings.snapshot_every, 1),
                cache_size=settings.aggregate_cache_size,
            ),
            publisher.submit,
            gate,
        )
        for spec in app.aggregates
    ]
    relay = OutboxRelay(
        sink,
        event_store,
        interval=settings.relay_interval_s,
        grace=timedelta(seconds=settings.relay_grace_s),
        batch_size=settings.relay_batch_size,
        backlog=backlog,
    )
    return AppWriter(app, event_store, publisher, relay, handlers)


def build_service(
    settings: CommandServiceSettings,
    apps: Sequence[App] | None = None,
    event_stores: Callable[[App], EventStore] | None = None,
) -> Service:
    """Wire everything; no I/O happens here (clients connect on first use, in the loop).

    ``event_stores`` replaces each app's MongoDB event store (an in-memory one in unit tests);
    the gate then opens at start-up without creating indexes."""
    served = list(apps) if apps is not None else settings.load_apps()
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
    sink = KafkaEventSink(
        settings.kafka_bootstrap_servers,
        {
            spec.aggregate_type: settings.topic_prefix + spec.topic
            for app in served
            for spec in app.aggregates
        },
        partitions=settings.partitions,
        replication_factor=settings.topic_replication_factor,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=settings.kafka_linger_ms,
        retry_backoff=settings.retry_backoff_s,
    )
    gate = StoreGate()
    writers = [
        _writer(
            app,
            settings,
            database,
            sink,
            gate,
            event_store=event_stores(app) if event_stores else None,
        )
        for app in served
    ]
    mediator = Mediator()
    for writer in writers:
        for handler in writer.handlers:
            for command_type in handler.command_types:
                mediator.register_command_handler(command_type, handler)
    return Service(
        settings=settings,
        apps=served,
        mongo=mongo,
        writers=writers,
        idempotency=IdempotencyStore(
            database,
            settings.idempotency_collection,
            timedelta(seconds=settings.idempotency_ttl_s),
        ),
        sink=sink,
        gate=gate,
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


def create_app(
    settings: CommandServiceSettings | None = None,
    apps: Sequence[App] | None = None,
    event_stores: Callable[[App], EventStore] | None = None,
) -> FastAPI:
    """The service for ``apps`` (default: the settings' ``TANDEM_APPS``)."""
    settings = settings or CommandServiceSettings()
    service = build_service(settings, apps, event_stores)

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
            f"The write API of {', '.join(a.title or a.name for a in service.apps)}. Every "
            "command answers the aggregate id and its new version; reads are the "
            "query-service's. Events: see /asyncapi.json."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.mediator = service.mediator  # read by tandem.api.get_mediator
    app.add_exception_handler(HTTPException, _error_body_http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for served in service.apps:
        for spec in served.aggregates:
            app.include_router(command_routes(spec, service.verifier))
    app.include_router(health_router({"mongodb": service.check_mongo, "kafka": service.sink.check}))
    asyncapi_document = build_asyncapi(service.apps, settings.partitions, service.topic)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI 3 document of the topics")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document

    # Added innermost first: the request meets them in the opposite order.
    app.add_middleware(
        IdempotencyMiddleware,
        store=service.idempotency,
        verifier=service.verifier,
        prefixes=tuple(
            {spec.route.rstrip("/") for served in service.apps for spec in served.aggregates}
        ),
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RetryAfterMiddleware, seconds=settings.retry_after_s)
    if settings.allowed_origins:
        # Outside the idempotency and size middlewares, so that a preflight (OPTIONS) is
        # answered here and every answer, errors included, carries the CORS headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=sorted(
                {r.method for a in service.apps for spec in a.aggregates for r in spec.commands}
            ),
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
