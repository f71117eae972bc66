"""Tandem: CQRS and event sourcing for Python on Kafka, MongoDB and Redis.

Everything the API document names is importable from here, except the FastAPI integration
(``tandem.api``) and the test utilities (``tandem.testing``), so that a worker importing
``tandem`` loads neither FastAPI nor pytest, nor the MongoDB/Redis drivers (their adapters live
in ``tandem.event_store.mongo``, ``tandem.read_model.mongo``, ``tandem.projections.mongo`` and
``tandem.cache.redis``).
"""

from tandem.aggregate import AggregateRepository, AggregateRoot, applies
from tandem.cache import CacheStats, InMemoryCache, MultiLevelCache, ReadModelCache
from tandem.dispatch import ChangeFeed, EventDispatcher, Subscription
from tandem.errors import (
    AggregateNotFound,
    ConcurrencyError,
    DomainError,
    HandlerNotFound,
    TandemError,
    UnknownEventType,
)
from tandem.event_store import EventStore, InMemoryEventStore, StoredCommit
from tandem.events import DomainEvent, EventRegistry, default_registry, register_event
from tandem.handlers import (
    CommandHandler,
    EventHandler,
    EventSourcingReadModelCommandHandler,
    NullUnitOfWork,
    QueryHandler,
    TransactionalCommandHandler,
    UnitOfWork,
)
from tandem.mediator import Mediator, get_mediator
from tandem.messages import Command, Query
from tandem.projections import (
    InMemoryProjectionRepository,
    Projection,
    ProjectionError,
    ProjectionEventHandler,
    ProjectionGapError,
    ProjectionRepository,
    ProjectionService,
)
from tandem.read_model import (
    InMemoryReadModelRepository,
    PaginatedResult,
    ReadModel,
    ReadModelConcurrencyError,
    ReadModelId,
    ReadModelQuery,
    ReadModelQueryHandler,
    ReadModelRepository,
    ReadModelService,
    SearchQuery,
)
from tandem.result import Error, Failure, Result, Success

__all__ = [
    "AggregateNotFound",
    "AggregateRepository",
    "AggregateRoot",
    "CacheStats",
    "ChangeFeed",
    "Command",
    "CommandHandler",
    "ConcurrencyError",
    "DomainError",
    "DomainEvent",
    "Error",
    "EventDispatcher",
    "EventHandler",
    "EventRegistry",
    "EventSourcingReadModelCommandHandler",
    "EventStore",
    "Failure",
    "HandlerNotFound",
    "InMemoryCache",
    "InMemoryEventStore",
    "InMemoryProjectionRepository",
    "InMemoryReadModelRepository",
    "Mediator",
    "MultiLevelCache",
    "NullUnitOfWork",
    "PaginatedResult",
    "Projection",
    "ProjectionError",
    "ProjectionEventHandler",
    "ProjectionGapError",
    "ProjectionRepository",
    "ProjectionService",
    "Query",
    "QueryHandler",
    "ReadModel",
    "ReadModelCache",
    "ReadModelConcurrencyError",
    "ReadModelId",
    "ReadModelQuery",
    "ReadModelQueryHandler",
    "ReadModelRepository",
    "ReadModelService",
    "Result",
    "SearchQuery",
    "StoredCommit",
    "Subscription",
    "Success",
    "TandemError",
    "TransactionalCommandHandler",
    "UnitOfWork",
    "UnknownEventType",
    "applies",
    "default_registry",
    "get_mediator",
    "register_event",
]
