"""MongoDB adapter of the read-model port.

Document shape: ``{_id: <id>, version, created_at, updated_at, data: {...}, <extra fields>}``.
``data`` stays a sub-document so a data key can never collide with ``version`` or ``_id``;
filters address it with dotted paths (dots are only forbidden inside stored keys).

Every write is one conditional single-document operation, atomic on MongoDB, so concurrent
writers of one id (two processes, or two tasks of one) need no lock: the condition decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from tandem.read_model.filters import to_mongo
from tandem.read_model.models import PaginatedResult, ReadModel, ReadModelId, SearchQuery
from tandem.read_model.repository import ReadModelConcurrencyError, id_value, search_fields_for

T = TypeVar("T", bound=ReadModel)
Document = dict[str, Any]


class MongoReadModelRepository(Generic[T]):
    """Read models in one collection; conditional writes make replays harmless.

    ``index_fields`` are ``data`` keys to index for filters and sorts (call
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
                [(f"data.{field}", ASCENDING)], name=f"data_{field.replace('.', '_')}"
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
            result = await self.collection.update_one(
                {"_id": key, "version": expected_version}, {"$set": document}
            )
            if result.matched_count == 0:
                raise ReadModelConcurrencyError(key, expected_version, await self._version(key))
            return True
        newer = {"_id": key, "version": {"$lt": model.version}}
        try:
            # If a newer-or-equal version is stored the filter misses, the upsert tries to
            # insert the same _id and the unique _id index turns it into DuplicateKeyError.
            await self.collection.update_one(newer, {"$set": document}, upsert=True)
        except DuplicateKeyError:
            # ...or two first writers raced on the insert: retry as a plain conditional update.
            result = await self.collection.update_one(newer, {"$set": document})
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
        mongo_filter = to_mongo(query.filters, query.search_term, self.search_fields)
        sort = [
            (f"data.{field}", DESCENDING if direction == "desc" else ASCENDING)
            for field, direction in query.sort
        ]
        sort.append(("_id", ASCENDING))  # tie-breaker: pages never overlap or skip
        total = await self.collection.count_documents(mongo_filter)
        cursor = (
            self.collection.find(mongo_filter)
            .sort(sort)
            .skip((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = [self._to_model(document) async for document in cursor]
        return PaginatedResult[T].create(items, total, query.page, query.page_size)

    async def count(self, filters: dict[str, Any] | None = None) -> int:
        return await self.collection.count_documents(to_mongo(filters or {}, None, ()))

    async def clear(self) -> None:
        await self.collection.delete_many({})

    async def _version(self, key: str) -> int | None:
        document = await self.collection.find_one({"_id": key}, {"version": 1})
        return int(document["version"]) if document is not None else None

    def _to_document(self, model: T) -> Document:
        document = model.model_dump(mode="python", exclude={"id"})
        document["_id"] = model.id.value
        return document

    def _to_model(self, document: Document) -> T:
        fields = {key: value for key, value in document.items() if key != "_id"}
        return self.model_type.model_validate({"id": {"value": document["_id"]}, **fields})
