"""One read model's repository as the query runtime sees it: the library's
:class:`~tandem.read_model.mongo.MongoReadModelRepository` over whichever collection the rebuild
pointer names right now.

The projector writes the documents (:mod:`tandem.read_model.documents`: ``_id`` = id, flat
fields, ``version``); the repository reads and searches that shape with the one filter
builder. :class:`ActiveRepository` is itself a
:class:`~tandem.read_model.repository.ReadModelRepository`, so the runtime's reads go through
:class:`~tandem.read_model.service.ReadModelService` like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING

from tandem.app import ReadModelSpec, TotalsProjection
from tandem.read_model.documents import to_api
from tandem.read_model.models import PaginatedResult, ReadModel, ReadModelId, SearchQuery
from tandem.read_model.mongo import MongoReadModelRepository
from tandem.runtime.query.collections import ActiveCollections

Document = dict[str, Any]


class ActiveRepository:
    """A read model's repository that follows the rebuild pointer."""

    model_type = ReadModel

    def __init__(self, spec: ReadModelSpec, collections: ActiveCollections) -> None:
        self.spec = spec
        self.collections = collections
        self.text_fields: Sequence[str] = spec.search.text_fields if spec.search else ()
        self._repositories: dict[str, MongoReadModelRepository[ReadModel]] = {}

    async def active(self) -> MongoReadModelRepository[ReadModel]:
        name = await self.collections.name(self.spec.collection)
        repository = self._repositories.get(name)
        if repository is None:
            repository = MongoReadModelRepository(
                ReadModel, self.collections.database[name], search_fields=self.text_fields
            )
            self._repositories = {name: repository}  # a switch retires the old collection
        return repository

    # -- documents: what the runtime serves --------------------------------------------------

    async def get_document(self, model_id: ReadModelId | str) -> Document | None:
        return await (await self.active()).get_document(model_id)

    async def get_documents(self, ids: Sequence[str]) -> dict[str, Document]:
        return await (await self.active()).get_documents(ids)

    async def search_documents(self, query: SearchQuery) -> PaginatedResult[Document]:
        return await (await self.active()).search_documents(query)

    async def get(self, document_id: str) -> Document | None:
        """The document in API shape, straight from MongoDB (no cache)."""
        document = await self.get_document(document_id)
        return to_api(document) if document is not None else None

    async def get_many(self, ids: list[str]) -> dict[str, Document]:
        """API-shaped documents by id: the live endpoint's snapshots."""
        found = await self.get_documents(ids)
        return {key: to_api(document) for key, document in found.items()}

    async def totals(self) -> list[Document]:
        """Every group of a totals read model, as ``projection.present`` shapes it."""
        projection = self.spec.projection
        assert isinstance(projection, TotalsProjection)
        collection = (await self.active()).collection
        rows: list[Document] = []
        async for document in collection.find({}).sort("_id", ASCENDING):
            rows.append(projection.present(str(document["_id"]), counters(document)))
        return rows

    # -- the rest of the port, as models -----------------------------------------------------

    async def get_by_id(self, model_id: ReadModelId | str) -> ReadModel | None:
        return await (await self.active()).get_by_id(model_id)

    async def save(self, model: ReadModel, expected_version: int | None = None) -> bool:
        return await (await self.active()).save(model, expected_version)

    async def delete(self, model_id: ReadModelId | str) -> bool:
        return await (await self.active()).delete(model_id)

    async def find(
        self, filters: dict[str, Any] | None = None, *, limit: int | None = None
    ) -> list[ReadModel]:
        return await (await self.active()).find(filters, limit=limit)

    async def search(self, query: SearchQuery) -> PaginatedResult[ReadModel]:
        return await (await self.active()).search(query)

    async def count(self, filters: dict[str, Any] | None = None) -> int:
        return await (await self.active()).count(filters)

    async def clear(self) -> None:
        await (await self.active()).clear()


def counters(document: Mapping[str, Any]) -> dict[str, int]:
    """The integer counters of a totals document; the projector's bookkeeping beside them
    (offsets per partition, presentational copies) is not an integer field and is skipped."""
    return {
        key: value
        for key, value in document.items()
        if key != "_id" and isinstance(value, int) and not isinstance(value, bool)
    }
