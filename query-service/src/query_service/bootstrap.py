"""The query service's one composition root: settings, clients, handlers, routes.

``create_app(settings)`` is what ``python -m query_service`` and the tests call. Clients are
built here (never at import time) and connected in the app's lifespan; every other module
receives its collaborators as arguments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import Field, model_validator
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tandem.auth import JWTVerifier, require_scopes
from tandem.behaviours import MetricsBehaviour
from tandem.cache.redis import RedisCache
from tandem.mediator import Mediator
from tandem.observability import (
    CorrelationIdMiddleware,
    PrometheusMiddleware,
    configure_logging,
    health_router,
)
from tandem.settings import EnvList, TandemSettings
from tandem_catalog.contract import CHANGES_CHANNEL, PRODUCT_CACHE_PREFIX, ChangeNotice
from tandem_catalog.events import PRODUCT_EVENT_TYPES

from query_service.cache import LruCache, ProductCache
from query_service.collections import ActiveCollections
from query_service.fanout import FanOut
from query_service.handlers import CategoryStatsHandler, GetProductHandler, SearchProductsHandler
from query_service.http import add_page_routes, add_read_routes, add_token_routes
from query_service.notices import READ_MODEL_SWITCHED, NoticeSubscriber
from query_service.queries import GetCategoryStats, GetProduct, SearchProducts
from query_service.reader import ProductReader
from query_service.search_cache import SearchCache
from query_service.versions import VersionWaiters
from query_service.ws import READ_SCOPE, WsAuthenticator, create_product_websocket_endpoint

SERVICE = "query-service"
Document = dict[str, Any]


class QueryServiceSettings(TandemSettings):
    """Every tunable of the query service (env ``TANDEM_<NAME>``); see docs/query-service.md."""

    http_port: int = Field(default=8002, ge=0, le=65535)
    changes_channel: str = CHANGES_CHANNEL
    cache_prefix: str = PRODUCT_CACHE_PREFIX
    cache_ttl_seconds: float = Field(default=300.0, gt=0)
    lru_size: int = Field(default=10_000, ge=1)
    lru_ttl_seconds: float = Field(default=30.0, gt=0)
    search_cache_size: int = Field(default=1_000, ge=0)
    """Search pages kept until the next change notice (0: off; see query_service.search_cache)."""
    search_cache_ttl_seconds: float = Field(default=30.0, gt=0)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    redis_retry_seconds: float = Field(default=2.0, gt=0)
    pointer_refresh_seconds: float = Field(default=5.0, gt=0)
    wait_ms_default: int = Field(default=2_000, ge=0)
    wait_ms_max: int = Field(default=10_000, ge=0)
    ws_queue_size: int = Field(default=256, ge=1)
    ws_heartbeat_seconds: float = Field(default=15.0, gt=0)
    ws_auth_deadline_seconds: float = Field(default=5.0, gt=0)
    ws_ticket_ttl_seconds: int = Field(default=30, ge=1, le=300)
    ws_max_ids: int = Field(default=1_000, ge=1)
    ws_per_message_deflate: bool = False
    read_auth_required: bool = False
    cors_origins: EnvList = Field(default_factory=list)
    command_service_url: str = "http://127.0.0.1:8001"
    dev_token_ttl_seconds: int = Field(default=900, ge=1, le=86_400)

    @model_validator(mode="after")
    def _wait_bounds(self) -> QueryServiceSettings:
        if self.wait_ms_default > self.wait_ms_max:
            raise ValueError("wait_ms_default must not exceed wait_ms_max")
        return self


@dataclass
class Container:
    """Everything the app holds for its lifetime (built without I/O; ``start`` connects)."""

    settings: QueryServiceSettings
    mongo: AsyncMongoClient[Document]
    redis: Redis
    pubsub_redis: Redis
    collections: ActiveCollections
    reader: ProductReader
    cache: ProductCache
    waiters: VersionWaiters
    fanout: FanOut
    subscriber: NoticeSubscriber
    searches: SearchCache
    mediator: Mediator = field(default_factory=lambda: Mediator(behaviours=[MetricsBehaviour()]))

    @classmethod
    def build(cls, settings: QueryServiceSettings) -> Container:
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5_000
        )
        timeout = settings.redis_timeout_seconds
        redis = Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # Its own connection without a read timeout: it blocks waiting for notices.
        pubsub_redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2.0, health_check_interval=15
        )
        collections = ActiveCollections(
            mongo[settings.mongo_read_db], settings.pointer_refresh_seconds
        )
        cache = ProductCache(
            LruCache(settings.lru_size, settings.lru_ttl_seconds),
            RedisCache(redis, prefix=settings.cache_prefix, ttl=settings.cache_ttl_seconds),
            redis_ttl=settings.cache_ttl_seconds,
            redis_retry_seconds=settings.redis_retry_seconds,
        )
        subscriber = NoticeSubscriber(pubsub_redis, settings.changes_channel)
        searches = SearchCache(
            settings.search_cache_size,
            settings.search_cache_ttl_seconds,
            live=subscriber.connected.is_set,
        )
        container = cls(
            settings=settings,
            mongo=mongo,
            redis=redis,
            pubsub_redis=pubsub_redis,
            collections=collections,
            reader=ProductReader(collections),
            cache=cache,
            waiters=VersionWaiters(),
            fanout=FanOut(settings.ws_heartbeat_seconds),
            subscriber=subscriber,
            searches=searches,
        )
        container._wire()
        return container

    def _wire(self) -> None:
        reader, cache, waiters = self.reader, self.cache, self.waiters
        self.mediator.register_query_handler(
            GetProduct,
            GetProductHandler(
                reader,
                cache,
                waiters,
                default_wait_ms=self.settings.wait_ms_default,
                max_wait_ms=self.settings.wait_ms_max,
            ),
        )
        self.mediator.register_query_handler(
            SearchProducts, SearchProductsHandler(reader, self.searches)
        )
        self.mediator.register_query_handler(GetCategoryStats, CategoryStatsHandler(reader))
        # Order matters: caches first, so a woken waiter or a client that re-reads at once
        # cannot be served the entry the notice just made stale.
        self.subscriber.add_listener(self._on_switch)
        self.subscriber.add_listener(lambda notice, _raw: cache.on_notice(notice))
        self.subscriber.add_listener(self.searches.invalidate)
        self.subscriber.add_listener(lambda notice, _raw: waiters.on_notice(notice))
        self.subscriber.add_listener(self.fanout.on_notice)
        self.subscriber.add_reconnect_listener(cache.clear_memory)
        self.subscriber.add_reconnect_listener(self.searches.invalidate)
        self.subscriber.add_reconnect_listener(self.collections.invalidate)
        self.subscriber.add_reconnect_listener(waiters.wake_all)
        self.subscriber.add_reconnect_listener(self.fanout.on_reconnect)

    def _on_switch(self, notice: ChangeNotice, _raw: bytes) -> None:
        if notice.event_type == READ_MODEL_SWITCHED:
            self.collections.invalidate()
            self.cache.clear_memory()

    async def start(self) -> None:
        await self.subscriber.start()
        await self.fanout.start()

    async def stop(self) -> None:
        await self.fanout.stop()
        await self.subscriber.stop()
        await self.redis.aclose()
        await self.pubsub_redis.aclose()
        await self.mongo.close()

    async def mongo_ready(self) -> None:
        await self.mongo.admin.command("ping")


def create_app(settings: QueryServiceSettings | None = None) -> FastAPI:
    settings = settings or QueryServiceSettings()
    container = Container.build(settings)
    verifier = JWTVerifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(
        title="Tandem query service",
        version="0.1.0",
        lifespan=lifespan,
        description="Reads from the read models; see docs/query-service.md.",
    )
    app.state.container = container
    app.state.mediator = container.mediator
    app.state.settings = settings

    read_auth = require_scopes(verifier, READ_SCOPE) if settings.read_auth_required else None
    add_read_routes(app, read_auth, container.cache)
    add_token_routes(
        app, settings, verifier, settings.ws_ticket_ttl_seconds, settings.dev_token_ttl_seconds
    )
    create_product_websocket_endpoint(
        app,
        "/ws/products",
        container.fanout,
        WsAuthenticator(verifier, settings.ws_ticket_ttl_seconds),
        PRODUCT_EVENT_TYPES,
        snapshots=container.reader.get_many,
        queue_size=settings.ws_queue_size,
        auth_deadline=settings.ws_auth_deadline_seconds,
        max_ids=settings.ws_max_ids,
    )
    # Redis is left out of readiness on purpose: reads survive its outage (from MongoDB), so
    # pulling every instance out of the load balancer for it would turn degradation into
    # downtime. Its health shows in tandem_query_redis_degraded_total and the logs.
    app.include_router(health_router({"mongo": container.mongo_ready}))
    add_page_routes(
        app,
        {
            "command_service_url": settings.command_service_url,
            "development": settings.environment == "development",
            "event_types": list(PRODUCT_EVENT_TYPES),
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


def configure(settings: QueryServiceSettings) -> None:
    configure_logging(SERVICE, settings.log_level, settings.resolved_log_format)
