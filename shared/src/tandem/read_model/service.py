"""Reads for queries: cache first, then the repository; answers as :class:`Result` values.

Two ways to read, over the same flat documents: as models (:meth:`ReadModelService.get`,
:meth:`~ReadModelService.query`, :meth:`~ReadModelService.search`), or as the documents'
API shape (:meth:`~ReadModelService.get_document`, :meth:`~ReadModelService.search_documents`),
which is what the query runtime serves: no model is validated per read, and a read model with
no timestamps is not given any.

The service owns the cache entries of its read-model type. Writes that go through it
(:meth:`save`, :meth:`delete`) invalidate the entry; writes made elsewhere (the projector)
must call :meth:`invalidate` or the cache's ``invalidate_by_event``, or rely on the TTL.
"""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from tandem.cache.base import ReadModelCache
from tandem.read_model.documents import to_api
from tandem.read_model.models import (
    PaginatedResult,
    ReadModel,
    ReadModelId,
    ReadModelQuery,
    SearchQuery,
)
from tandem.read_model.repository import ReadModelRepository, id_value
from tandem.result import Error, Failure, Result, Success

T = TypeVar("T", bound=ReadModel)
Document = dict[str, Any]
logger = logging.getLogger(__name__)


class ReadModelService(Generic[T]):
    def __init__(
        self,
        repository: ReadModelRepository[T],
        model_type: type[T] | None = None,
        cache: ReadModelCache | None = None,
        cache_ttl: float | None = None,
    ) -> None:
        self.repository = repository
        self.model_type: type[T] = model_type or repository.model_type
        self.cache = cache
        self.cache_ttl = cache_ttl

    async def get(self, model_id: ReadModelId | str) -> T | None:
        key = id_value(model_id)
        if self.cache is not None:
            cached = await self.cache.get(key)
            if cached is not None:
                try:
                    return self.model_type.model_validate(cached)
                except ValidationError:
                    # An entry written by an older model shape: drop it rather than fail a read.
                    logger.warning("dropping undecodable cache entry %r", key)
                    await self.cache.delete(key)
        model = await self.repository.get_by_id(key)
        if model is not None and self.cache is not None:
            await self.cache.set(key, model.model_dump(mode="json"), self.cache_ttl)
        return model

    async def query(self, query: ReadModelQuery) -> Result[T]:
        model = await self.get(query.id)
        return self.not_found(query) if model is None else Success(model)

    def not_found(self, query: ReadModelQuery) -> Failure[Any]:
        """The 404 of a read of ``query.id`` that found nothing (models and documents alike)."""
        kind = (query.model_type or self.model_type).__name__
        return Failure(
            Error(
                code="not_found",
                message=f"{kind} {query.id.value!r} not found",
                status_code=404,
                details={"id": query.id.value, "model_type": kind},
            )
        )

    async def search(self, query: SearchQuery) -> Result[PaginatedResult[T]]:
        try:
            return Success(await self.repository.search(query))
        except ValueError as exc:  # a bad operator in filters is the caller's fault
            return Failure(Error(code="invalid_search", message=str(exc), status_code=400))

    async def get_document(self, model_id: ReadModelId | str) -> Document | None:
        """The document in API shape (:func:`~tandem.read_model.documents.to_api`), cache
        first; a miss is read from the repository and cached."""
        key = id_value(model_id)
        if self.cache is not None:
            cached = await self.cache.get(key)
            if isinstance(cached, dict):
                return cached
        document = await self.repository.get_document(key)
        if document is None:
            return None
        shaped = to_api(document)
        if self.cache is not None:
            await self.cache.set(key, shaped, self.cache_ttl)
        return shaped

    async def search_documents(self, query: SearchQuery) -> PaginatedResult[Document]:
        """A page of documents in API shape (raises ``ValueError`` for a bad operator)."""
        page = await self.repository.search_documents(query)
        return PaginatedResult[Document].create(
            [to_api(document) for document in page.items], page.total, page.page, page.page_size
        )

    async def save(self, model: T, expected_version: int | None = None) -> bool:
        written = await self.repository.save(model, expected_version)
        if written:
            await self.invalidate(model.id)
        return written

    async def delete(self, model_id: ReadModelId | str) -> bool:
        deleted = await self.repository.delete(model_id)
        await self.invalidate(model_id)
        return deleted

    async def invalidate(self, model_id: ReadModelId | str) -> None:
        if self.cache is not None:
            await self.cache.invalidate(id_value(model_id))
