"""Query handlers that answer from read models instead of aggregates."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from tandem.handlers import QueryHandler
from tandem.read_model.models import PaginatedResult, ReadModel, ReadModelQuery, SearchQuery
from tandem.read_model.service import ReadModelService
from tandem.result import Error, Failure, Result, Success

TQuery = TypeVar("TQuery")
TResult = TypeVar("TResult")
TReadModel = TypeVar("TReadModel", bound=ReadModel)
logger = logging.getLogger(__name__)


class ReadModelQueryHandler(QueryHandler[TQuery, TResult], Generic[TQuery, TResult, TReadModel]):
    """Turns a domain query into a :class:`ReadModelQuery` (one model) or a
    :class:`SearchQuery` (a page) and answers it from ``read_model_service``.

    ``mapper`` converts one read model; for a search it is applied to each item of the page
    (the seed applied it to the whole page, which cannot type-check). A missing model is a
    ``Failure`` with code ``not_found`` (404); an exception is a ``Failure`` with code
    ``read_model_query_error`` (500) and is logged with its traceback.

    ``documents = True`` (a class attribute) answers from the stored documents in API shape
    (:meth:`ReadModelService.get_document` / :meth:`~ReadModelService.search_documents`)
    instead of models; the query runtime's search handler is such a handler.
    """

    documents: bool = False

    def __init__(
        self,
        read_model_service: ReadModelService[TReadModel],
        mapper: Callable[[TReadModel], Any] | None = None,
    ) -> None:
        self.read_model_service = read_model_service
        self.mapper: Callable[[TReadModel], Any] = mapper or (lambda model: model)

    @abstractmethod
    def _to_read_model_query(self, query: TQuery) -> ReadModelQuery | SearchQuery: ...

    async def handle(self, query: TQuery) -> Result[TResult]:
        try:
            read_query = self._to_read_model_query(query)
            if isinstance(read_query, SearchQuery):
                page = await self._search(read_query)
                if not page.is_success():
                    return Failure(page.error)
                mapped = PaginatedResult[Any].create(
                    [self.mapper(item) for item in page.value.items],
                    page.value.total,
                    page.value.page,
                    page.value.page_size,
                )
                return Success(cast(TResult, mapped))
            found = await self._get(read_query)
            if not found.is_success():
                return Failure(found.error)
            return Success(cast(TResult, self.mapper(found.value)))
        except Exception as exc:  # a Failure value at the boundary, logged with its traceback
            logger.exception("read-model query failed", exc_info=exc)
            return Failure(
                Error(
                    code="read_model_query_error",
                    message=str(exc) or type(exc).__name__,
                    status_code=500,
                    details={"exception": type(exc).__name__},
                )
            )

    async def _search(self, query: SearchQuery) -> Result[PaginatedResult[Any]]:
        if not self.documents:
            return await self.read_model_service.search(query)
        try:
            return Success(await self.read_model_service.search_documents(query))
        except ValueError as exc:  # a bad operator in filters is the caller's fault
            return Failure(Error(code="invalid_search", message=str(exc), status_code=400))

    async def _get(self, query: ReadModelQuery) -> Result[Any]:
        if not self.documents:
            return await self.read_model_service.query(query)
        document = await self.read_model_service.get_document(query.id)
        if document is None:
            return self.read_model_service.not_found(query)
        return Success(document)
