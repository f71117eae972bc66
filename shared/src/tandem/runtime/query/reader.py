"""Reads one read model's flat documents from MongoDB, through the library's repository.

The projector writes the documents (:mod:`tandem.read_model.documents`: ``_id`` = id, flat
fields, ``version``); :class:`~tandem.read_model.mongo.MongoReadModelRepository` reads and
searches that shape, with the one filter builder, so this module only adds what the runtime
needs around it: the active collection behind the rebuild pointer, and the API shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING

from tandem.app import ReadModelSpec, TotalsProjection
from tandem.read_model.documents import to_api
from tandem.read_model.models import PaginatedResult, ReadModel, SearchQuery
from tandem.read_model.mongo import MongoReadModelRepository
from tandem.runtime.query.collections import ActiveCollections

Document = dict[str, Any]


class DocumentReader:
    """One read model's documents in API shape (get, get many, search, list)."""

    def __init__(self, spec: ReadModelSpec, collections: ActiveCollections) -> None:
        self.spec = spec
        self.collections = collections
        self.text_fields: Sequence[str] = spec.search.text_fields if spec.search else ()
        self._repositories: dict[str, MongoReadModelRepository[ReadModel]] = {}

    async def repository(self) -> MongoReadModelRepository[ReadModel]:
        """The repository over the collection the rebuild pointer names right now."""
        name = await self.collections.name(self.spec.collection)
        repository = self._repositories.get(name)
        if repository is None:
            repository = MongoReadModelRepository(
                ReadModel, self.collections.database[name], search_fields=self.text_fields
            )
            self._repositories = {name: repository}  # a switch retires the old collection
        return repository

    async def get(self, document_id: str) -> Document | None:
        document = await (await self.repository()).get_document(document_id)
        return to_api(document) if document is not None else None

    async def get_many(self, ids: list[str]) -> dict[str, Document]:
        found = await (await self.repository()).get_documents(ids)
        return {key: to_api(document) for key, document in found.items()}

    async def search(self, query: SearchQuery) -> PaginatedResult[Document]:
        page = await (await self.repository()).search_documents(query)
        return PaginatedResult[Document].create(
            [to_api(document) for document in page.items], page.total, page.page, page.page_size
        )

    async def totals(self) -> list[Document]:
        """Every group of a totals read model, as ``projection.present`` shapes it."""
        projection = self.spec.projection
        assert isinstance(projection, TotalsProjection)
        repository = await self.repository()
        rows: list[Document] = []
        async for document in repository.collection.find({}).sort("_id", ASCENDING):
            rows.append(projection.present(str(document["_id"]), counters(document)))
        return rows


def counters(document: Mapping[str, Any]) -> dict[str, int]:
    """The integer counters of a totals document; the projector's bookkeeping beside them
    (offsets per partition, presentational copies) is not an integer field and is skipped."""
    return {
        key: value
        for key, value in document.items()
        if key != "_id" and isinstance(value, int) and not isinstance(value, bool)
    }
