"""Where an event becomes a read model: projections, their checkpoints and the service."""

from typing import TYPE_CHECKING, Any

from tandem.projections.batch import (
    AggregateChange,
    BatchPlan,
    BatchProjection,
    EventSource,
    Step,
)
from tandem.projections.checkpoints import (
    InMemoryProjectionRepository,
    ProjectionRepository,
)
from tandem.projections.handler import ProjectionEventHandler
from tandem.projections.projection import Projection, ProjectionError, ProjectionGapError
from tandem.projections.service import ProjectionService

__all__ = [
    "AggregateChange",
    "BatchPlan",
    "BatchProjection",
    "EventSource",
    "InMemoryProjectionRepository",
    "MongoProjectionRepository",
    "Projection",
    "ProjectionError",
    "ProjectionEventHandler",
    "ProjectionGapError",
    "ProjectionRepository",
    "ProjectionService",
    "Step",
]

# MongoDB/Redis adapters load on first use, so ``import tandem`` does not import their drivers.
if TYPE_CHECKING:
    from tandem.projections.mongo import MongoProjectionRepository


def __getattr__(name: str) -> Any:
    if name == "MongoProjectionRepository":
        from tandem.projections.mongo import MongoProjectionRepository

        return MongoProjectionRepository
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
