"""Test utilities for Tandem apps: harnesses, an in-memory container, and (in
``tandem.testing.infra``, loaded as a pytest plugin) fixtures for real servers."""

from tandem.testing.aggregate import AggregateScenario, event_payload
from tandem.testing.container import CQRSTestContainer
from tandem.testing.harness import (
    CommandTestHarness,
    EventStoreTestHarness,
    MockUnitOfWork,
    ProjectionTest,
    QueryTestHarness,
)

__all__ = [
    "AggregateScenario",
    "CQRSTestContainer",
    "CommandTestHarness",
    "EventStoreTestHarness",
    "MockUnitOfWork",
    "ProjectionTest",
    "QueryTestHarness",
    "event_payload",
]
