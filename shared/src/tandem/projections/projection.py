"""Projections: the code that turns one kind of event into read-model writes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from tandem.errors import TandemError
from tandem.read_model.repository import ReadModelRepository

TReadModel = TypeVar("TReadModel", bound=Any)
TEvent = TypeVar("TEvent", bound=Any)


class Projection(ABC, Generic[TReadModel, TEvent]):
    """Applies events of ``event_type`` to read models stored in ``repository``.

    ``apply`` should be written so that applying the same event twice is harmless (use the
    event's ``version`` as the model's version and let the repository's conditional save drop
    the replay): the :class:`ProjectionService` checkpoints after ``apply`` returns, so a crash
    in between replays the event.
    """

    def __init__(
        self, repository: ReadModelRepository[TReadModel], event_type: type[TEvent]
    ) -> None:
        self.repository = repository
        self.event_type = event_type

    @property
    def name(self) -> str:
        """Checkpoint key; override if two instances of one class project different models."""
        return type(self).__name__

    @property
    def read_model_type_name(self) -> str | None:
        model_type = getattr(self.repository, "model_type", None)
        return model_type.__name__ if isinstance(model_type, type) else None

    @abstractmethod
    async def apply(self, event: TEvent) -> TReadModel | None: ...


class ProjectionError(TandemError):
    """A projection raised while applying an event; the original exception is ``__cause__``.

    The event was *not* checkpointed, so applying it again later retries it.
    """

    code = "projection_error"
    status_code = 500

    def __init__(self, projection: str, event: Any, cause: BaseException) -> None:
        aggregate_id = getattr(event, "aggregate_id", None)
        version = getattr(event, "version", None)
        super().__init__(
            f"projection {projection} failed on {type(event).__name__} "
            f"({aggregate_id} v{version}): {cause!r}"
        )
        self.projection = projection
        self.event = event
        self.cause = cause


class ProjectionGapError(TandemError):
    """The event is ahead of the checkpoint by more than one: earlier events are missing.

    Heal by reading versions ``stored_version + 1 .. event_version - 1`` from the event store,
    applying them in order, then this event again. Nothing was applied.
    """

    code = "projection_gap"
    status_code = 500

    def __init__(
        self, aggregate_id: str, stored_version: int, event_version: int, projection: str = ""
    ) -> None:
        super().__init__(
            f"projection {projection or '?'}: {aggregate_id} is at version {stored_version}, "
            f"got event version {event_version}"
        )
        self.aggregate_id = aggregate_id
        self.stored_version = stored_version
        self.event_version = event_version
        self.projection = projection

    @property
    def missing_versions(self) -> range:
        return range(self.stored_version + 1, self.event_version)
