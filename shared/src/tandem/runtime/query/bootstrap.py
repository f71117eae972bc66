"""The query service's one composition root: settings, apps, clients, handlers, routes.

``create_app(settings)`` is what ``python -m query_service`` and the tests call; it serves
every read model of the apps in ``settings.apps`` (or of ``apps`` when a caller passes
declarations directly). Clients are built here (never at import time) and connected in the
app's lifespan; every other module receives its collaborators as arguments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tandem.api import CQRSEndpointFactory
from tandem.app import App, FoldProjection, ReadModelSpec, check_together
from tandem.auth import JWTVerifier, require_scopes
from tandem.behaviours import MetricsBehaviour
from tandem.cache.memory import InMemoryCache
from tandem.cache.redis import RedisCache
from tandem.mediator import Mediator
from tandem.observability import (
    CorrelationIdMiddleware,
    PrometheusMiddleware,
    configure_logging,
    health_router,
)
from tandem.read_model.service import ReadModelService
from tandem.runtime.query.cache import DocumentCache
from tandem.runtime.query.collections import ActiveCollections
from tandem.runtime.query.fanout import RedisChangeFeed
from tandem.runtime.query.handlers import GetDocumentHandler, SearchHandler, TotalsHandler
from tandem.runtime.query.http import (
    add_document_routes,
    add_page_routes,
    add_token_routes,
    add_totals_route,
)
from tandem.runtime.query.notices import NoticeSubscriber
from tandem.runtime.query.queries import get_query_for, noun, totals_query_for
from tandem.runtime.query.reader import ActiveRepository
from tandem.runtime.query.search_cache import SearchCache
from tandem.runtime.query.settings import QueryServiceSettings
from tandem.runtime.query.views import ReadModelView, Views
from tandem.runtime.query.ws import WsAuthenticator

SERVICE = "query-service"
Document = dict[str, Any]

__all__ = ["Container", "QueryServiceSettings", "configure", "create_app"]


@dataclass
class Container:
    """Everything the app holds for its lifetime (built without I/O; ``start`` connects)."""

    settings: QueryServiceSettings
    apps: list[App]
    mongo: AsyncMongoClient[Document]
    redis: Redis
    pubsub_redis: Redis
    collections: ActiveCollections
    views: Views
    subscriber: NoticeSubscriber
    mediator: Mediator = field(default_factory=lambda: Mediator(behaviours=[MetricsBehaviour()]))

    @classmethod
    def build(cls, settings: QueryServiceSettings, apps: Sequence[App] | None = None) -> Container:
        served = check_together(apps) if apps is not None else settings.load_apps()
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5_000
        )
        timeout = settings.redis_timeout_s
        redis = Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # Its own connection without a read timeout: it blocks waiting for notices.
        pubsub_redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2.0, health_check_interval=15
        )
        collections = ActiveCollections(mongo[settings.mongo_read_db], settings.pointer_refresh_s)
        views = Views(
            [
                cls._view(settings, app, spec, redis, collections)
                for app in served
                for spec in app.read_models
            ]
        )
        subscriber = NoticeSubscriber(pubsub_redis, views.channels)
        for view in views:
            view.searches.live = subscriber.connected.is_set
        container = cls(
            settings=settings,
            apps=served,
            mongo=mongo,
            redis=redis,
            pubsub_redis=pubsub_redis,
            collections=collections,
            views=views,
            subscriber=subscriber,
        )
        container._wire()
        return container

    @staticmethod
    def _view(
        settings: QueryServiceSettings,
        app: App,
        spec: ReadModelSpec,
        redis: Redis,
        collections: ActiveCollections,
    ) -> ReadModelView:
        cache = DocumentCache(
            InMemoryCache(settings.lru_size, settings.lru_ttl_s, copies=False),
            RedisCache(redis, prefix=spec.cache_prefix, ttl=settings.cache_ttl_s),
            redis_ttl=settings.cache_ttl_s,
            redis_retry_s=settings.redis_retry_s,
        )
        live = spec.live and isinstance(spec.projection, FoldProjection)
        repository = ActiveRepository(spec, collections)
        return ReadModelView(
            app=app,
            spec=spec,
            collections=collections,
            repository=repository,
            cache=cache,
            service=ReadModelService(repository, cache=cache, cache_ttl=settings.cache_ttl_s),
            searches=SearchCache(settings.search_cache_size, settings.search_cache_ttl_s),
            feed=RedisChangeFeed() if live else None,
        )

    def _wire(self) -> None:
        settings = self.settings
        for view in self.views:
            spec = view.spec
            if not spec.is_fold:
                self.mediator.register_query_handler(
                    totals_query_for(spec), TotalsHandler(view.repository)
                )
                continue
            self.mediator.register_query_handler(
                get_query_for(spec),
                GetDocumentHandler(
                    view.service,
                    view.cache,
                    view.waiters,
                    default_wait_ms=settings.wait_ms_default,
                    max_wait_ms=settings.wait_ms_max,
                    noun=noun(spec),
                ),
            )
            if spec.search is not None:
                self.mediator.register_query_handler(
                    spec.search.query,
                    SearchHandler(view.service, spec.search.build, view.searches),
                )
        self.subscriber.add_listener(self.views.on_notice)
        self.subscriber.add_reconnect_listener(self.views.on_reconnect)

    async def start(self) -> None:
        await self.subscriber.start()

    async def stop(self) -> None:
        await self.subscriber.stop()
        await self.redis.aclose()
        await self.pubsub_redis.aclose()
        await self.mongo.close()

    async def mongo_ready(self) -> None:
        await self.mongo.admin.command("ping")


def create_app(
    settings: QueryServiceSettings | None = None, apps: Sequence[App] | None = None
) -> FastAPI:
    settings = settings or QueryServiceSettings()
    container = Container.build(settings, apps)
    verifier = JWTVerifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    first = container.apps[0]
    app = FastAPI(
        title=f"Tandem query service: {', '.join(a.title or a.name for a in container.apps)}",
        version="0.1.0",
        lifespan=lifespan,
        description="Reads from the read models; see docs/query-service.md.",
    )
    app.state.container = container
    app.state.mediator = container.mediator
    app.state.settings = settings

    for view in container.views:
        spec = view.spec
        read_auth = require_scopes(verifier, spec.scope) if settings.read_auth_required else None
        if spec.is_fold:
            add_document_routes(app, spec, read_auth, view.cache)
        else:
            add_totals_route(app, spec, read_auth)
    live = container.views.live
    scopes = list(dict.fromkeys(view.spec.scope for view in live))
    write_scopes = [agg.scope for a in container.apps for agg in a.aggregates]
    read_scopes = [spec.scope for a in container.apps for spec in a.read_models]
    add_token_routes(
        app,
        settings,
        verifier,
        read_scopes=scopes or read_scopes[:1],
        dev_scopes=list(dict.fromkeys([*read_scopes, *write_scopes])),
        page_subject=f"{first.name}-page",
    )
    tickets = WsAuthenticator(verifier, settings.ws_ticket_ttl_s, scopes[0] if scopes else "")
    for view in live:
        assert view.feed is not None
        # The seed's factory method over the Redis change feed: the distributed endpoint.
        endpoint = CQRSEndpointFactory.create_websocket_endpoint(
            app,
            f"/ws/{view.name}",
            view.feed,
            allowed_event_types=_event_types(view),
            authenticator=tickets.for_scope(view.spec.scope),
            snapshots=view.repository.get_many,
            queue_size=settings.ws_queue_size,
            heartbeat_interval=settings.ws_heartbeat_s,
            auth_deadline=settings.ws_auth_deadline_s,
            max_ids=settings.ws_max_ids,
        )
        view.resync_required = endpoint.resync_required  # type: ignore[attr-defined]
    # Redis is left out of readiness on purpose: reads survive its outage (from MongoDB), so
    # pulling every instance out of the load balancer for it would turn degradation into
    # downtime. Its health shows in tandem_query_redis_degraded_total and the logs.
    app.include_router(health_router({"mongo": container.mongo_ready}))
    if first.static_dir is not None:
        add_page_routes(
            app,
            first.static_dir,
            {
                "command_service_url": settings.command_service_url,
                "development": settings.environment == "development",
                "event_types": list(_event_types(live[0])) if live else [],
            },
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Min-Version", "X-Correlation-ID"],
            expose_headers=["ETag", "X-Read-Model-Version", "X-Correlation-ID"],
        )
    app.add_middleware(PrometheusMiddleware, service=SERVICE)
    app.add_middleware(CorrelationIdMiddleware)
    return app


def _event_types(view: ReadModelView) -> tuple[str, ...]:
    projection = view.spec.projection
    return projection.event_types if isinstance(projection, FoldProjection) else ()


def configure(settings: QueryServiceSettings) -> None:
    configure_logging(SERVICE, settings.log_level, settings.resolved_log_format)
