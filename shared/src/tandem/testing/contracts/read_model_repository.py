"""The read-model repository contract: every ``ReadModelRepository`` adapter must answer every
case the same way as the in-memory one (filters follow MongoDB semantics).

Subclass :class:`ReadModelRepositoryContract` and provide a ``repo`` fixture: an empty
repository of :class:`ContractProduct` whose text search covers ``name`` and ``description``
(the default). A MongoDB-backed one may index ``category`` and ``price``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from tandem.read_model import ReadModel, ReadModelId, SearchQuery
from tandem.read_model.repository import ReadModelConcurrencyError, ReadModelRepository

Repository = ReadModelRepository[Any]


class ContractProduct(ReadModel):
    """The read model the contract stores."""


def contract_product(pid: str, version: int = 1, **data: Any) -> ContractProduct:
    return ContractProduct(id=ReadModelId(value=pid), version=version, data={"id": pid, **data})


CONTRACT_CATALOG = (
    contract_product(
        "p1", name="Red Shoe", description="running", price=30.0, category="shoes", stock=3
    ),
    contract_product(
        "p2", name="Blue Shoe", description="walking (wide)", price=50.0, category="shoes"
    ),
    contract_product(
        "p3", name="Green Hat", description="sun hat", price=15.5, category="hats", stock=0
    ),
    contract_product(
        "p4", name="Red Hat", description="wool", price=25.0, category="hats", stock=7
    ),
    contract_product(
        "p5", name="Shoe Horn", description="metal", price=5.0, category="tools", stock=1
    ),
)


def _ids(models: Sequence[ReadModel]) -> list[str]:
    return sorted(m.id.value for m in models)


async def _data(repo: Repository, model_id: str) -> dict[str, Any]:
    model = await repo.get_by_id(model_id)
    assert model is not None, f"{model_id} is missing"
    data: dict[str, Any] = model.data
    return data


class ReadModelRepositoryContract:
    """The tests every ``ReadModelRepository`` must pass; needs a ``repo`` fixture."""

    @pytest_asyncio.fixture
    async def catalog(self, repo: Repository) -> Repository:
        for item in CONTRACT_CATALOG:
            assert await repo.save(item)
        return repo

    async def test_get_missing_is_none(self, repo: Repository) -> None:
        assert await repo.get_by_id(ReadModelId(value="nope")) is None
        assert await repo.get_by_id("nope") is None

    async def test_roundtrip_keeps_fields(self, repo: Repository) -> None:
        created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        model = ContractProduct(
            id=ReadModelId(value="x"),
            version=3,
            created_at=created,
            updated_at=created,
            data={"name": "X", "price": Decimal("29.99"), "tags": ["a", "b"], "dims": {"w": 2}},
        )
        assert await repo.save(model) is True
        loaded = await repo.get_by_id(ReadModelId(value="x"))
        assert isinstance(loaded, ContractProduct)
        assert loaded.version == 3
        assert loaded.created_at == created
        assert loaded.data == {"name": "X", "price": 29.99, "tags": ["a", "b"], "dims": {"w": 2}}

    async def test_save_ignores_older_or_equal_version(self, repo: Repository) -> None:
        assert await repo.save(contract_product("a", 2, name="v2"))
        assert await repo.save(contract_product("a", 2, name="again")) is False
        assert await repo.save(contract_product("a", 1, name="old")) is False
        assert (await _data(repo, "a"))["name"] == "v2"
        assert await repo.save(contract_product("a", 3, name="v3"))
        assert (await _data(repo, "a"))["name"] == "v3"

    async def test_expected_version_compare_and_set(self, repo: Repository) -> None:
        assert await repo.save(contract_product("b", 1), expected_version=0)
        with pytest.raises(ReadModelConcurrencyError) as info:
            await repo.save(contract_product("b", 1), expected_version=0)
        assert info.value.actual_version == 1
        assert await repo.save(contract_product("b", 2, name="two"), expected_version=1)
        with pytest.raises(ReadModelConcurrencyError):
            await repo.save(contract_product("b", 3), expected_version=1)
        with pytest.raises(ReadModelConcurrencyError) as missing:
            await repo.save(contract_product("c", 2), expected_version=1)
        assert missing.value.actual_version is None

    async def test_concurrent_saves_keep_highest_version(self, repo: Repository) -> None:
        await asyncio.gather(*(repo.save(contract_product("race", v, v=v)) for v in range(1, 11)))
        loaded = await repo.get_by_id("race")
        assert loaded is not None
        assert loaded.version == 10

    async def test_returned_models_are_copies(self, repo: Repository) -> None:
        await repo.save(contract_product("m", name="orig"))
        (await _data(repo, "m"))["name"] = "mutated"
        assert (await _data(repo, "m"))["name"] == "orig"

    async def test_delete(self, repo: Repository) -> None:
        await repo.save(contract_product("d"))
        assert await repo.delete(ReadModelId(value="d")) is True
        assert await repo.delete("d") is False
        assert await repo.get_by_id("d") is None

    async def test_find_and_count(self, catalog: Repository) -> None:
        assert [m.id.value for m in await catalog.find({"category": "hats"})] == ["p3", "p4"]
        assert await catalog.count({"category": "shoes"}) == 2
        assert await catalog.count() == 5
        assert len(await catalog.find(limit=2)) == 2

    async def test_range_and_operator_filters(self, catalog: Repository) -> None:
        assert _ids(await catalog.find({"price": {"gte": 15.5, "lte": 30}})) == ["p1", "p3", "p4"]
        assert _ids(await catalog.find({"price": {"$gt": 25, "$lt": 50}})) == ["p1"]
        assert _ids(await catalog.find({"category": {"in": ["tools", "hats"]}})) == [
            "p3",
            "p4",
            "p5",
        ]
        assert _ids(await catalog.find({"category": {"nin": ["shoes", "hats"]}})) == ["p5"]
        # Mongo semantics: a missing field fails ranges and equality but satisfies "ne".
        assert _ids(await catalog.find({"stock": {"gte": 0}})) == ["p1", "p3", "p4", "p5"]
        assert _ids(await catalog.find({"stock": {"ne": 3}})) == ["p2", "p3", "p4", "p5"]

    async def test_unknown_operator_is_rejected(self, catalog: Repository) -> None:
        with pytest.raises(ValueError, match="operator"):
            await catalog.find({"price": {"$where": "1"}})

    async def test_search_text_is_case_insensitive_substring(self, catalog: Repository) -> None:
        page = await catalog.search(SearchQuery(search_term="shoe", sort="name"))
        assert [m.id.value for m in page.items] == ["p2", "p1", "p5"]
        assert page.total == 3

    async def test_search_term_in_description_and_regex_chars_are_literal(
        self, catalog: Repository
    ) -> None:
        page = await catalog.search(SearchQuery(search_term="(WIDE)"))
        assert [m.id.value for m in page.items] == ["p2"]
        assert (await catalog.search(SearchQuery(search_term=".*"))).total == 0
        assert (await catalog.search(SearchQuery(search_term="sun hat"))).total == 1

    async def test_search_filters_sort_and_pages(self, catalog: Repository) -> None:
        query = SearchQuery(filters={"price": {"lt": 40}}, sort=[("price", "desc")], page_size=2)
        first = await catalog.search(query)
        second = await catalog.search(query.model_copy(update={"page": 2}))
        assert [m.id.value for m in first.items] == ["p1", "p4"]
        assert [m.id.value for m in second.items] == ["p3", "p5"]
        assert (first.total, first.pages, first.page, first.page_size) == (4, 2, 1, 2)
        beyond = await catalog.search(query.model_copy(update={"page": 9}))
        assert beyond.items == []
        assert beyond.total == 4

    async def test_multi_key_sort_with_id_tiebreak(self, catalog: Repository) -> None:
        page = await catalog.search(SearchQuery(sort="category,-price", page_size=100))
        assert [m.id.value for m in page.items] == ["p4", "p3", "p2", "p1", "p5"]
        unsorted = await catalog.search(SearchQuery(page_size=100))
        assert [m.id.value for m in unsorted.items] == ["p1", "p2", "p3", "p4", "p5"]

    async def test_clear(self, catalog: Repository) -> None:
        await catalog.clear()
        assert await catalog.count() == 0

    async def test_documents_are_flat_like_the_projectors(self, catalog: Repository) -> None:
        """One document shape: ``_id`` = id, the data's fields at the top level, ``version``."""
        document = await catalog.get_document("p1")
        assert document is not None
        flat = {k: v for k, v in document.items() if k not in ("created_at", "updated_at")}
        assert flat == {
            "_id": "p1",
            "version": 1,
            "id": "p1",
            "name": "Red Shoe",
            "description": "running",
            "price": 30.0,
            "category": "shoes",
            "stock": 3,
        }
        assert await catalog.get_document("nope") is None
        assert set(await catalog.get_documents(["p2", "p3", "nope"])) == {"p2", "p3"}
        page = await catalog.search_documents(
            SearchQuery(search_term="shoe", filters={"price": {"lt": 40}}, sort="-price")
        )
        assert [(d["_id"], d["price"]) for d in page.items] == [("p1", 30.0), ("p5", 5.0)]
        assert page.total == 2

    async def test_a_filter_can_address_the_version(self, catalog: Repository) -> None:
        assert await catalog.save(contract_product("p1", 4, name="Red Shoe v4"))
        assert _ids(await catalog.find({"version": {"gte": 2}})) == ["p1"]

    async def test_data_keys_that_would_shadow_bookkeeping_are_refused(
        self, repo: Repository
    ) -> None:
        with pytest.raises(ValueError, match="reserved"):
            await repo.save(ContractProduct(id=ReadModelId(value="x"), data={"version": 9}))


__all__ = [
    "CONTRACT_CATALOG",
    "ContractProduct",
    "ReadModelRepositoryContract",
    "contract_product",
]
