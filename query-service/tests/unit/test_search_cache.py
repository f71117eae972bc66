"""The search cache never answers older than the notices seen, and stays bounded."""

from __future__ import annotations

import pytest
from tandem.runtime.query.search_cache import SearchCache

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stored_page_is_served_until_a_notice() -> None:
    cache = SearchCache(10, 30.0)
    cache.put(("q", "a"), cache.generation, "page-a")
    assert cache.get(("q", "a")) == "page-a"
    cache.invalidate()
    assert cache.get(("q", "a")) is None
    assert len(cache) == 0


def test_a_read_that_raced_a_notice_is_not_stored() -> None:
    cache = SearchCache(10, 30.0)
    generation = cache.generation  # the search starts reading MongoDB
    cache.invalidate()  # a change notice arrives meanwhile
    cache.put(("q",), generation, "read-before-the-change")
    assert cache.get(("q",)) is None


def test_nothing_is_served_or_stored_while_notices_may_be_lost() -> None:
    live = [True]
    cache = SearchCache(10, 30.0, live=lambda: live[0])
    cache.put(("q",), cache.generation, "page")
    live[0] = False
    assert cache.get(("q",)) is None
    cache.put(("r",), cache.generation, "page")
    live[0] = True
    assert cache.get(("r",)) is None
    assert cache.get(("q",)) == "page"  # reconnect listeners invalidate; see bootstrap


def test_entries_expire_and_the_oldest_go_first() -> None:
    clock = Clock()
    cache = SearchCache(2, 5.0, clock=clock)
    for key in ("a", "b"):
        cache.put((key,), cache.generation, key)
    assert cache.get(("a",)) == "a"  # a is now the most recent
    cache.put(("c",), cache.generation, "c")
    assert cache.get(("b",)) is None
    assert [cache.get(("a",)), cache.get(("c",))] == ["a", "c"]
    clock.now = 5.0
    assert cache.get(("a",)) is None


def test_size_zero_is_off() -> None:
    cache = SearchCache(0, 30.0)
    cache.put(("q",), cache.generation, "page")
    assert cache.get(("q",)) is None
    assert len(cache) == 0
