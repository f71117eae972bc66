"""Given/when/then scenarios for aggregates, without any store.

    (AggregateScenario(Product, "p-1")
        .given(ProductCreated(...))
        .when(lambda product: product.rename("New"))
        .then(ProductRenamed(aggregate_id="p-1", aggregate_type="Product", name="New")))

``then`` compares event classes and payloads but not metadata (ids, timestamps, versions,
correlation), which a test cannot know in advance; ``then_raises`` expects a rule to break.
For a creation command, start without ``given`` and return the new aggregate from ``when``.

``when`` keeps whatever the action raised for ``then_raises``, so a scenario that stops at
``when`` would pass whatever happened; the pytest plugin :mod:`tandem.testing.checks` fails a
test that leaves a ``when`` without ``then``/``then_nothing``/``then_raises``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tandem.aggregate import AggregateRoot
from tandem.errors import DomainError
from tandem.event_store.protocol import stamp_versions
from tandem.events import DomainEvent

A = TypeVar("A", bound=AggregateRoot)

_unchecked: list[AggregateScenario[Any]] = []
"""Scenarios of the running test whose ``when`` ran and that nothing has checked yet."""

METADATA_FIELDS = frozenset(
    {"event_id", "occurred_at", "version", "correlation_id", "causation_id"}
)


def event_payload(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    return event.event_type, event.model_dump(exclude=set(METADATA_FIELDS))


class AggregateScenario(Generic[A]):
    def __init__(self, aggregate_type: type[A], aggregate_id: str = "aggregate-1") -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self._history: list[DomainEvent] = []
        self._raised: BaseException | None = None
        self._ran = False
        self.aggregate: A | None = None

    def given(self, *events: DomainEvent) -> AggregateScenario[A]:
        """Past events; their versions are renumbered 1, 2, ... so tests need not count."""
        self._history.extend(stamp_versions(events, len(self._history) + 1))
        return self

    def when(self, action: Callable[[A], object]) -> AggregateScenario[A]:
        """Run ``action`` on the aggregate rebuilt from ``given``; if it returns an aggregate
        (a factory such as ``Product.create``), that one is the subject."""
        subject = self.aggregate_type.from_history(self.aggregate_id, self._history)
        self._ran = True
        _unchecked.append(self)
        try:
            returned = action(subject)
        except Exception as exc:
            self._raised = exc
            self.aggregate = subject
            return self
        self.aggregate = returned if isinstance(returned, self.aggregate_type) else subject
        return self

    @property
    def new_events(self) -> list[DomainEvent]:
        self._require_ran()
        if self._raised is not None:
            raise AssertionError(f"expected events, but when() raised {self._raised!r}")
        assert self.aggregate is not None
        return list(self.aggregate.pending_events)

    def then(self, *expected: DomainEvent) -> AggregateScenario[A]:
        self._checked()
        actual = [event_payload(e) for e in self.new_events]
        wanted = [event_payload(e) for e in expected]
        assert actual == wanted, f"events differ:\n  expected {wanted}\n  actual   {actual}"
        return self

    def then_nothing(self) -> AggregateScenario[A]:
        return self.then()

    def then_raises(
        self, error_type: type[BaseException] = DomainError, *, code: str | None = None
    ) -> BaseException:
        self._require_ran()
        self._checked()
        raised = self._raised
        assert isinstance(raised, error_type), f"expected {error_type.__name__}, got {raised!r}"
        if code is not None:
            assert getattr(raised, "code", None) == code, f"expected code {code!r}, got {raised!r}"
        assert self.aggregate is None or not self.aggregate.pending_events, (
            "a failed command must not leave pending events"
        )
        return raised

    def _require_ran(self) -> None:
        if not self._ran:
            raise AssertionError("call when() before then()")

    def _checked(self) -> None:
        if self in _unchecked:
            _unchecked.remove(self)


def take_unchecked() -> list[AggregateScenario[Any]]:
    """The scenarios whose ``when`` ran and that nothing checked since the last call (which
    forgets them); the pytest plugin :mod:`tandem.testing.checks` calls it around each test."""
    unchecked = list(_unchecked)
    _unchecked.clear()
    return unchecked


__all__ = ["METADATA_FIELDS", "AggregateScenario", "event_payload", "take_unchecked"]
