"""tandem.app.SearchParams: a read model's search declared as fields, turned into the one
SearchQuery that every repository answers (equality, operators, text, sort, pages)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import Field, ValidationError
from tandem.app import AppError, Search, SearchParams
from tandem.messages import Query
from tandem.read_model import InMemoryReadModelRepository
from tandem.read_model.models import ReadModel, ReadModelId, SearchQuery

pytestmark = pytest.mark.unit


class SearchBooks(SearchParams):
    operators = {"min_pages": ("pages", "gte"), "max_pages": ("pages", "lte")}
    q: str | None = Field(default=None, max_length=50)
    genre: str | None = None
    min_pages: int | None = None
    max_pages: int | None = None
    sort: Literal["title", "-pages"] = "title"


class Book(ReadModel):
    """A read model of the seed's shape: its fields are in ``data``."""


def test_only_the_parameters_given_are_filters_and_operators_group_by_field() -> None:
    search = SearchBooks(genre="poetry", min_pages=10, max_pages=90, page=2).to_search()
    assert search.filters == {"genre": "poetry", "pages": {"gte": 10, "lte": 90}}
    assert (search.search_term, search.page, search.page_size) == (None, 2, 20)
    assert search.sort == [("title", "asc")]


def test_text_sort_and_an_empty_value_which_is_not_a_filter() -> None:
    search = SearchBooks(q="sea", genre="", sort="-pages", correlation_id="c-1").to_search()
    assert search.filters == {}  # neither the empty genre nor the message's correlation id
    assert (search.search_term, search.sort) == ("sea", [("pages", "desc")])


def test_unknown_and_out_of_range_parameters_are_refused() -> None:
    with pytest.raises(ValidationError):
        SearchBooks.model_validate({"author": "x"})
    with pytest.raises(ValidationError):
        SearchBooks(page_size=101)
    with pytest.raises(ValidationError):
        SearchBooks.model_validate({"sort": "author"})


async def test_the_search_it_builds_is_answered_by_a_repository() -> None:
    repository = InMemoryReadModelRepository(Book)
    for i, (genre, pages) in enumerate([("poetry", 40), ("poetry", 120), ("novel", 50)]):
        data = {"title": f"t{i}", "genre": genre, "pages": pages}
        await repository.save(Book(id=ReadModelId(value=f"b{i}"), version=1, data=data))
    page = await repository.search(SearchBooks(genre="poetry", max_pages=100).to_search())
    assert [str(book.id) for book in page.items] == ["b0"]


def test_search_uses_the_querys_own_to_search_unless_given_one() -> None:
    declared = Search(SearchBooks, text_fields=("title",))
    assert declared.build(SearchBooks(genre="novel")).filters == {"genre": "novel"}

    def only_poetry(query: Any) -> SearchQuery:
        return SearchQuery(filters={"genre": "poetry"})

    assert Search(SearchBooks, only_poetry).build(SearchBooks()).filters == {"genre": "poetry"}


def test_a_query_without_to_search_needs_one_given() -> None:
    class Plain(Query[Any]):
        genre: str | None = None

    with pytest.raises(AppError, match="no to_search"):
        Search(Plain)
