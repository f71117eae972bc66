"""MongoDB adapter of the read-model port (MongoDB and other MongoDB-wire servers).

Documents are flat (:mod:`tandem.read_model.documents`): the same documents the projector
writes, so this repository and the query runtime read one shape. :func:`find_page` is the one
search over such a collection (filters from :func:`tandem.read_model.filters.to_mongo`); the
repository and the query runtime both call it.

Every write is one conditional single-document operation, atomic on MongoDB, so concurrent
writers of one id (two processes, or two tasks of one) need no lock: the condition decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from tandem.read_model.documents import from_document, to_document
from tandem.read_model.filters import to_mongo, to_mongo_sort
from tandem.read_model.models import PaginatedResult, ReadModel, ReadModelId, SearchQuery
from tandem.read_model.repository import ReadModelConcurrencyError, id_value, search_fields_for

T = TypeVar("T", bound=ReadModel)
Document = dict[str, Any]


class MongoReadModelRepository(Generic[T]):
    """Read models in one collection; conditional writes make replays harmless.

    ``index_fields`` are fields to index for filters and sorts (call
    :meth:`ensure_indexes` once at startup, from the composition root).
    """

    def __init__(
        self,
        model_type: type[T],
        collection: AsyncCollection[Document],
        *,
        search_fields: Sequence[str] | None = None,
        index_fields: Sequence[str] = (),
    ) -> None:
        self.model_type = model_type
        self.collection = collection
        self.search_fields = search_fields_for(model_type, search_fields)
        self.index_fields = tuple(index_fields)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("version", ASCENDING)], name="version")
        for field in self.index_fields:
            await self.collection.create_index(
                [(field, ASCENDING)], name=f"{field.replace('.', '_')}_1"
            )

    async def get_by_id(self, model_id: ReadModelId | str) -> T | None:
        document = await self.collection.find_one({"_id": id_value(model_id)})
        return self._to_model(document) if document is not None else None

    async def save(self, model: T, expected_version: int | None = None) -> bool:
        document = self._to_document(model)
        key = document.pop("_id")
        if expected_version == 0:
            try:
                await self.collection.insert_one({"_id": key, **document})
            except DuplicateKeyError:
                raise ReadModelConcurrencyError(key, 0, await self._version(key)) from None
            return True
        if expected_version is not None:
            result = await self.collection.replace_one(
                {"_id": key, "version": expected_version}, document
            )
            if result.matched_count == 0:
                raise ReadModelConcurrencyError(key, expected_version, await self._version(key))
            return True
        newer = {"_id": key, "version": {"$lt": model.version}}
        try:
            # If a newer-or-equal version is stored the filter misses, the upsert tries to
            # insert the same _id and the unique _id index turns it into DuplicateKeyError.
            await self.collection.replace_one(newer, document, upsert=True)
        except DuplicateKeyError:
            # ...or two first writers raced on the insert: retry as a plain conditional update.
            result = await self.collection.replace_one(newer, document)
            return result.matched_count > 0
        return True

    async def delete(self, model_id: ReadModelId | str) -> bool:
        result = await self.collection.delete_one({"_id": id_value(model_id)})
        return result.deleted_count > 0

    async def find(
        self, filters: dict[str, Any] | None = None, *, limit: int | None = None
    ) -> list[T]:
        cursor = self.collection.find(to_mongo(filters or {}, None, ())).sort("_id", ASCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [self._to_model(document) async for document in cursor]

    async def search(self, query: SearchQuery) -> PaginatedResult[T]:
        page = await find_page(self.collection, query, self.search_fields)
        items = [self._to_model(document) for document in page.items]
        return PaginatedResult[T].create(items, page.total, page.page, page.page_size)

    async def get_document(self, model_id: ReadModelId | str) -> Document | None:
        """The stored document itself (no model validation): what the query runtime serves."""
        return await self.collection.find_one({"_id": id_value(model_id)})

    async def get_documents(self, ids: Sequence[str]) -> dict[str, Document]:
        if not ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": list(ids)}})
        return {str(document["_id"]): document async for document in cursor}

    async def search_documents(self, query: SearchQuery) -> PaginatedResult[Document]:
        return await find_page(self.collection, query, self.search_fields)

    async def count(self, filters: dict[str, Any] | None = None) -> int:
        return await self.collection.count_documents(to_mongo(filters or {}, None, ()))

    async def clear(self) -> None:
        await self.collection.delete_many({})

    async def _version(self, key: str) -> int | None:
        document = await self.collection.find_one({"_id": key}, {"version": 1})
        return int(document["version"]) if document is not None else None

    def _to_document(self, model: T) -> Document:
        return to_document(model)

    def _to_model(self, document: Document) -> T:
        return from_document(self.model_type, document)


async def find_page(
    collection: AsyncCollection[Document], query: SearchQuery, text_fields: Sequence[str]
) -> PaginatedResult[Document]:
    """One page of flat documents matching ``query`` (text over ``text_fields``), sorted with
    ``_id`` as the tie-breaker. The count and the page are independent reads, run side by
    side: a search costs the longer of the two, not their sum."""
    mongo_filter = to_mongo(query.filters, query.search_term, text_fields)
    cursor = (
        collection.find(mongo_filter)
        .sort(to_mongo_sort(query.sort))
        .skip((query.page - 1) * query.page_size)
        .limit(query.page_size)
    )
    total, items = await asyncio.gather(collection.count_documents(mongo_filter), cursor.to_list())
    return PaginatedResult[Document].create(items, total, query.page, query.page_size)
