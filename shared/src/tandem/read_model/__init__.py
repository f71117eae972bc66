"""The read side: read models, their repositories, the service queries use, and handlers."""

from typing import TYPE_CHECKING, Any

from tandem.read_model.models import (
    PaginatedResult,
    ReadModel,
    ReadModelId,
    ReadModelQuery,
    SearchQuery,
)
from tandem.read_model.query_handler import ReadModelQueryHandler
from tandem.read_model.repository import (
    InMemoryReadModelRepository,
    ReadModelConcurrencyError,
    ReadModelRepository,
)
from tandem.read_model.service import ReadModelService

__all__ = [
    "InMemoryReadModelRepository",
    "MongoReadModelRepository",
    "PaginatedResult",
    "ReadModel",
    "ReadModelConcurrencyError",
    "ReadModelId",
    "ReadModelQuery",
    "ReadModelQueryHandler",
    "ReadModelRepository",
    "ReadModelService",
    "SearchQuery",
]

# MongoDB/Redis adapters load on first use, so ``import tandem`` does not import their drivers.
if TYPE_CHECKING:
    from tandem.read_model.mongo import MongoReadModelRepository


def __getattr__(name: str) -> Any:
    if name == "MongoReadModelRepository":
        from tandem.read_model.mongo import MongoReadModelRepository

        return MongoReadModelRepository
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
