"""Query handlers of one read model: read models only (the event store is never read here).

A get reads memory LRU -> Redis -> MongoDB and fills the caches on a miss. With
``min_version`` it answers at once when the cached copy is recent enough; otherwise it waits
for the projector's change notice (see :mod:`tandem.runtime.query.versions`), re-reading
MongoDB directly, and past the bound answers ``409 stale_read_model`` with the version it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tandem.handlers import QueryHandler
from tandem.messages import Query
from tandem.read_model.documents import to_api
from tandem.read_model.models import PaginatedResult, ReadModel, SearchQuery
from tandem.read_model.query_handler import ReadModelQueryHandler
from tandem.read_model.service import ReadModelService
from tandem.result import Error, Failure, Result, Success
from tandem.runtime.query.cache import DocumentCache
from tandem.runtime.query.metrics import VERSION_WAIT_SECONDS, VERSION_WAITS
from tandem.runtime.query.queries import GetDocument, ListTotals, VersionedDocument
from tandem.runtime.query.reader import ActiveRepository
from tandem.runtime.query.search_cache import SearchCache
from tandem.runtime.query.versions import VersionWaiters

Document = dict[str, Any]
STALE_STATUS = 409
_IMMEDIATE = VERSION_WAITS.labels("immediate")
_FRESH = VERSION_WAITS.labels("fresh")
_STALE = VERSION_WAITS.labels("stale")


class GetDocumentHandler(QueryHandler[GetDocument, VersionedDocument]):
    """Built on the read model's :class:`~tandem.read_model.service.ReadModelService` (its
    cache is the :class:`DocumentCache`): the plain read is the service's cache-first
    ``get_document``; the wait adds version waiters around it."""

    def __init__(
        self,
        service: ReadModelService[Any],
        cache: DocumentCache,
        waiters: VersionWaiters,
        *,
        default_wait_ms: int,
        max_wait_ms: int,
        noun: str = "document",
    ) -> None:
        self.service = service
        self.cache = cache
        self.waiters = waiters
        self.default_wait_ms = default_wait_ms
        self.max_wait_ms = max_wait_ms
        self.noun = noun

    async def read(self, document_id: str) -> Document | None:
        return await self.service.get_document(document_id)

    async def read_stored(self, document_id: str) -> Document | None:
        """MongoDB itself, past the caches (a waiter re-reading after a notice)."""
        document = await self.service.repository.get_document(document_id)
        return to_api(document) if document is not None else None

    async def handle(self, query: GetDocument) -> Result[VersionedDocument]:
        document = await self.read(query.id)
        if query.min_version is None:
            if document is None:
                return self._not_found(query.id)
            return Success(VersionedDocument(document, int(document["version"])))
        if document is not None and int(document["version"]) >= query.min_version:
            _IMMEDIATE.inc()
            return Success(VersionedDocument(document, int(document["version"])))
        return await self._wait(query)

    def _not_found(self, document_id: str) -> Failure[VersionedDocument]:
        return Failure(
            Error(
                code="not_found",
                message=f"{self.noun} {document_id!r} not found",
                status_code=404,
                details={"id": document_id},
            )
        )

    async def _wait(self, query: GetDocument) -> Result[VersionedDocument]:
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
                latest, from_mongo = await self.read_stored(query.id), True
            return int(latest["version"]) if latest is not None else 0

        started = time.perf_counter()
        reached, current = await self.waiters.wait_for(
            query.id, query.min_version, read_version, wait_ms / 1000
        )
        VERSION_WAIT_SECONDS.observe(time.perf_counter() - started)
        if reached and latest is not None:
            _FRESH.inc()
            if from_mongo:
                await self.cache.set(query.id, latest)
            return Success(VersionedDocument(latest, current))
        _STALE.inc()
        return Failure(
            Error(
                code="stale_read_model",
                message=(
                    f"{self.noun} {query.id!r} is at version {current} on the read side; "
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


class SearchHandler(ReadModelQueryHandler[Query[Any], PaginatedResult[Document], ReadModel]):
    """The app's search query (validated from the query string), turned into the library's
    :class:`~tandem.read_model.models.SearchQuery` by the declaration and answered from the
    flat documents by the seed's handler; pages are kept until the read model's next notice."""

    documents = True

    def __init__(
        self,
        service: ReadModelService[Any],
        to_search: Callable[[Any], SearchQuery],
        cache: SearchCache | None = None,
    ) -> None:
        super().__init__(service)
        self.to_search = to_search
        self.cache = cache if cache is not None else SearchCache(0, 0.0)

    def _to_read_model_query(self, query: Query[Any]) -> SearchQuery:
        return self.to_search(query)

    async def handle(self, query: Query[Any]) -> Result[PaginatedResult[Document]]:
        key = tuple(query.model_dump(exclude={"correlation_id"}).items())
        page = self.cache.get(key)
        if page is not None:
            return Success(page)
        generation = self.cache.generation
        result = await super().handle(query)
        if result.is_success():
            self.cache.put(key, generation, result.value)
        return result


class TotalsHandler(QueryHandler[ListTotals, dict[str, Any]]):
    def __init__(self, repository: ActiveRepository) -> None:
        self.repository = repository

    async def handle(self, query: ListTotals) -> Result[dict[str, Any]]:
        return Success({"items": await self.repository.totals()})
