"""The read-model storage port and its in-memory adapter.

Write contract (the same for every adapter, enforced by one contract test suite):

* ``save(model)`` writes when nothing is stored under the id or the stored version is *lower*
  than ``model.version``; otherwise it writes nothing and returns ``False``. Delivery is
  at-least-once, so a replayed or out-of-order write is normal, not an error.
* ``save(model, expected_version=n)`` is compare-and-set: it writes only when the stored
  version is exactly ``n`` (``0`` means "must not exist yet") and raises
  :class:`ReadModelConcurrencyError` otherwise, because the caller read a stale copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from tandem.errors import TandemError
from tandem.read_model.documents import to_document
from tandem.read_model.filters import matches, sort_key
from tandem.read_model.models import PaginatedResult, ReadModel, ReadModelId, SearchQuery

T = TypeVar("T", bound=ReadModel)


class ReadModelConcurrencyError(TandemError):
    """A compare-and-set save found a different version than the caller expected."""

    code = "read_model_conflict"
    status_code = 409

    def __init__(self, model_id: str, expected_version: int, actual_version: int | None) -> None:
        super().__init__(
            f"read model {model_id!r}: expected version {expected_version}, "
            f"found {actual_version if actual_version is not None else 'nothing'}"
        )
        self.model_id = model_id
        self.expected_version = expected_version
        self.actual_version = actual_version


@runtime_checkable
class ReadModelRepository(Protocol[T]):
    """Storage port for one read-model type."""

    model_type: type[T]

    async def get_by_id(self, model_id: ReadModelId | str) -> T | None: ...

    async def save(self, model: T, expected_version: int | None = None) -> bool: ...

    async def delete(self, model_id: ReadModelId | str) -> bool: ...

    async def find(
        self, filters: dict[str, Any] | None = None, *, limit: int | None = None
    ) -> list[T]: ...

    async def search(self, query: SearchQuery) -> PaginatedResult[T]: ...

    async def count(self, filters: dict[str, Any] | None = None) -> int: ...

    async def clear(self) -> None: ...

    # The stored documents themselves (flat, ``_id`` = id; see tandem.read_model.documents):
    # what the query runtime serves, without validating a model per read.

    async def get_document(self, model_id: ReadModelId | str) -> dict[str, Any] | None: ...

    async def get_documents(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def search_documents(self, query: SearchQuery) -> PaginatedResult[dict[str, Any]]: ...


def id_value(model_id: ReadModelId | str) -> str:
    return model_id.value if isinstance(model_id, ReadModelId) else model_id


def search_fields_for(
    model_type: type[ReadModel], override: Sequence[str] | None
) -> tuple[str, ...]:
    return tuple(override) if override is not None else model_type.search_fields


class InMemoryReadModelRepository(Generic[T]):
    """Dict-backed repository for tests and single-process tools; same semantics as MongoDB.

    Filters, text search and sorts see a model as its flat document
    (:func:`~tandem.read_model.documents.to_document`), exactly as MongoDB does.

    Models are copied on the way in and out so a caller mutating what it got back cannot
    change what is stored (MongoDB would not let it either).
    """

    def __init__(self, model_type: type[T], *, search_fields: Sequence[str] | None = None) -> None:
        self.model_type = model_type
        self.search_fields = search_fields_for(model_type, search_fields)
        self._models: dict[str, T] = {}

    async def get_by_id(self, model_id: ReadModelId | str) -> T | None:
        model = self._models.get(id_value(model_id))
        return model.model_copy(deep=True) if model is not None else None

    async def save(self, model: T, expected_version: int | None = None) -> bool:
        key = model.id.value
        to_document(model)  # the same refusal of reserved data keys as MongoDB
        stored = self._models.get(key)
        stored_version = stored.version if stored is not None else None
        if expected_version is not None:
            if (stored_version or 0) != expected_version:
                raise ReadModelConcurrencyError(key, expected_version, stored_version)
        elif stored_version is not None and stored_version >= model.version:
            return False
        self._models[key] = model.model_copy(deep=True)
        return True

    async def delete(self, model_id: ReadModelId | str) -> bool:
        return self._models.pop(id_value(model_id), None) is not None

    async def find(
        self, filters: dict[str, Any] | None = None, *, limit: int | None = None
    ) -> list[T]:
        found = self._matching(filters or {}, None)
        found.sort(key=lambda model: model.id.value)
        return [model.model_copy(deep=True) for model in found[:limit]]

    async def search(self, query: SearchQuery) -> PaginatedResult[T]:
        found = self._matching(query.filters, query.search_term)
        # Stable sorts applied last-key-first give a multi-key sort; the id is the tie-breaker
        # so pages never overlap, exactly like the MongoDB adapter.
        found.sort(key=lambda model: model.id.value)
        for field, direction in reversed(query.sort):
            found.sort(
                key=lambda model: sort_key(to_document(model), field),
                reverse=direction == "desc",
            )
        start = (query.page - 1) * query.page_size
        page = [model.model_copy(deep=True) for model in found[start : start + query.page_size]]
        return PaginatedResult[T].create(page, len(found), query.page, query.page_size)

    async def count(self, filters: dict[str, Any] | None = None) -> int:
        return len(self._matching(filters or {}, None))

    async def clear(self) -> None:
        self._models.clear()

    async def get_document(self, model_id: ReadModelId | str) -> dict[str, Any] | None:
        model = self._models.get(id_value(model_id))
        return to_document(model) if model is not None else None

    async def get_documents(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {key: to_document(self._models[key]) for key in ids if key in self._models}

    async def search_documents(self, query: SearchQuery) -> PaginatedResult[dict[str, Any]]:
        page = await self.search(query)
        documents = [to_document(model) for model in page.items]
        return PaginatedResult[dict[str, Any]].create(
            documents, page.total, page.page, page.page_size
        )

    def _matching(self, filters: dict[str, Any], search_term: str | None) -> list[T]:
        return [
            model
            for model in self._models.values()
            if matches(to_document(model), filters, search_term, self.search_fields)
        ]
