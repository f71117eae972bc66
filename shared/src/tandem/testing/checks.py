"""pytest plugin (``pytest_plugins = ["tandem.testing.checks"]``): checks that cannot be
forgotten. A test that leaves an :class:`~tandem.testing.aggregate.AggregateScenario` at
``when`` (no ``then``, ``then_nothing`` or ``then_raises``) fails, because such a scenario
passes whatever the command did, exceptions included."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tandem.testing.aggregate import take_unchecked


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    take_unchecked()  # a scenario left over from another test is not this test's
    try:
        outcome = yield
    except BaseException:
        take_unchecked()
        raise
    unchecked = take_unchecked()
    if unchecked:
        raise AssertionError(
            f"{len(unchecked)} AggregateScenario.when() without then(), then_nothing() or "
            "then_raises(): the scenario checks nothing"
        )
    return outcome
