"""Query handlers: read models only (the event store is never read here).

``GetProduct`` reads memory LRU -> Redis -> MongoDB and fills the caches on a miss. With
``min_version`` it answers at once when the cached copy is recent enough; otherwise it waits
for the projector's change notice (see :mod:`query_service.versions`), re-reading MongoDB
directly, and past the bound answers ``409 stale_read_model`` with the version it has.
"""

from __future__ import annotations

import time
from typing import Any

from tandem.handlers import QueryHandler
from tandem.read_model.models import PaginatedResult
from tandem.result import Error, Failure, Result, Success
from tandem_catalog.queries import (
    GetCategoryStats,
    GetProduct,
    SearchProducts,
    VersionedProduct,
)

from tandem.runtime.query.cache import ProductCache
from tandem.runtime.query.metrics import VERSION_WAIT_SECONDS, VERSION_WAITS
from tandem.runtime.query.reader import ProductReader
from tandem.runtime.query.search_cache import SearchCache
from tandem.runtime.query.versions import VersionWaiters

Document = dict[str, Any]
STALE_STATUS = 409
_IMMEDIATE = VERSION_WAITS.labels("immediate")
_FRESH = VERSION_WAITS.labels("fresh")
_STALE = VERSION_WAITS.labels("stale")


def _not_found(product_id: str) -> Failure[VersionedProduct]:
    return Failure(
        Error(
            code="not_found",
            message=f"product {product_id!r} not found",
            status_code=404,
            details={"id": product_id},
        )
    )


class GetProductHandler(QueryHandler[GetProduct, VersionedProduct]):
    def __init__(
        self,
        reader: ProductReader,
        cache: ProductCache,
        waiters: VersionWaiters,
        *,
        default_wait_ms: int,
        max_wait_ms: int,
    ) -> None:
        self.reader = reader
        self.cache = cache
        self.waiters = waiters
        self.default_wait_ms = default_wait_ms
        self.max_wait_ms = max_wait_ms

    async def read(self, product_id: str) -> Document | None:
        document = await self.cache.get(product_id)
        if document is not None:
            return document
        document = await self.reader.get(product_id)
        if document is not None:
            await self.cache.fill(product_id, document)
        return document

    async def handle(self, query: GetProduct) -> Result[VersionedProduct]:
        document = await self.read(query.id)
        if query.min_version is None:
            if document is None:
                return _not_found(query.id)
            return Success(VersionedProduct(document, int(document["version"])))
        if document is not None and int(document["version"]) >= query.min_version:
            _IMMEDIATE.inc()
            return Success(VersionedProduct(document, int(document["version"])))
        return await self._wait(query)

    async def _wait(self, query: GetProduct) -> Result[VersionedProduct]:
        assert query.min_version is not None
        wait_ms = min(
            self.default_wait_ms if query.wait_ms is None else query.wait_ms, self.max_wait_ms
        )
        latest: Document | None = None
        from_mongo = False

        async def read_version() -> int:
            # The projector writes Redis before it sends the notice and the cache refuses
            # entries older than the notices seen, so after a notice the cache answers; when
            # it has nothing recent enough (first look, Redis down, a lost write), MongoDB.
            nonlocal latest, from_mongo
            assert query.min_version is not None
            cached = await self.cache.get(query.id)
            if cached is not None and int(cached["version"]) >= query.min_version:
                latest, from_mongo = cached, False
            else:
                latest, from_mongo = await self.reader.get(query.id), True
            return int(latest["version"]) if latest is not None else 0

        started = time.perf_counter()
        reached, current = await self.waiters.wait_for(
            query.id, query.min_version, read_version, wait_ms / 1000
        )
        VERSION_WAIT_SECONDS.observe(time.perf_counter() - started)
        if reached and latest is not None:
            _FRESH.inc()
            if from_mongo:
                await self.cache.fill(query.id, latest)
            return Success(VersionedProduct(latest, current))
        _STALE.inc()
        return Failure(
            Error(
                code="stale_read_model",
                message=(
                    f"product {query.id!r} is at version {current} on the read side; "
                    f"version {query.min_version} was not projected within {wait_ms} ms"
                ),
                status_code=STALE_STATUS,
                details={
                    "id": query.id,
                    "min_version": query.min_version,
                    "current_version": current,
                    "waited_ms": wait_ms,
                },
            )
        )


class SearchProductsHandler(QueryHandler[SearchProducts, PaginatedResult[Document]]):
    def __init__(self, reader: ProductReader, cache: SearchCache | None = None) -> None:
        self.reader = reader
        self.cache = cache if cache is not None else SearchCache(0, 0.0)

    async def handle(self, query: SearchProducts) -> Result[PaginatedResult[Document]]:
        key = tuple(query.model_dump(exclude={"correlation_id"}).items())
        page = self.cache.get(key)
        if page is None:
            generation = self.cache.generation
            page = await self.reader.search(query)
            self.cache.put(key, generation, page)
        return Success(page)


class CategoryStatsHandler(QueryHandler[GetCategoryStats, dict[str, Any]]):
    def __init__(self, reader: ProductReader) -> None:
        self.reader = reader

    async def handle(self, query: GetCategoryStats) -> Result[dict[str, Any]]:
        return Success({"categories": await self.reader.category_stats()})
