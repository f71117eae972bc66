"""One contract for every ReadModelRepository: in memory (unit) and FerretDB/MongoDB
(integration) must answer every case the same way."""

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tandem import (
    InMemoryReadModelRepository,
    ReadModel,
    ReadModelConcurrencyError,
    ReadModelId,
    SearchQuery,
)
from tandem.read_model.mongo import MongoReadModelRepository


class Product(ReadModel):
    pass


def product(pid: str, version: int = 1, **data) -> Product:
    return Product(id=ReadModelId(value=pid), version=version, data={"id": pid, **data})


CATALOG = [
    product("p1", name="Red Shoe", description="running", price=30.0, category="shoes", stock=3),
    product("p2", name="Blue Shoe", description="walking (wide)", price=50.0, category="shoes"),
    product("p3", name="Green Hat", description="sun hat", price=15.5, category="hats", stock=0),
    product("p4", name="Red Hat", description="wool", price=25.0, category="hats", stock=7),
    product("p5", name="Shoe Horn", description="metal", price=5.0, category="tools", stock=1),
]


class ReadModelRepositoryContract:
    @pytest.fixture
    async def repo(self):
        raise NotImplementedError

    @pytest.fixture
    async def catalog(self, repo):
        for item in CATALOG:
            assert await repo.save(item)
        return repo

    async def test_get_missing_is_none(self, repo):
        assert await repo.get_by_id(ReadModelId(value="nope")) is None
        assert await repo.get_by_id("nope") is None

    async def test_roundtrip_keeps_fields(self, repo):
        created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        model = Product(
            id=ReadModelId(value="x"),
            version=3,
            created_at=created,
            updated_at=created,
            data={"name": "X", "price": Decimal("29.99"), "tags": ["a", "b"], "dims": {"w": 2}},
        )
        assert await repo.save(model) is True
        loaded = await repo.get_by_id(ReadModelId(value="x"))
        assert isinstance(loaded, Product)
        assert loaded.version == 3
        assert loaded.created_at == created
        assert loaded.data == {"name": "X", "price": 29.99, "tags": ["a", "b"], "dims": {"w": 2}}

    async def test_save_ignores_older_or_equal_version(self, repo):
        assert await repo.save(product("a", 2, name="v2"))
        assert await repo.save(product("a", 2, name="again")) is False
        assert await repo.save(product("a", 1, name="old")) is False
        assert (await repo.get_by_id("a")).data["name"] == "v2"
        assert await repo.save(product("a", 3, name="v3"))
        assert (await repo.get_by_id("a")).data["name"] == "v3"

    async def test_expected_version_compare_and_set(self, repo):
        assert await repo.save(product("b", 1), expected_version=0)
        with pytest.raises(ReadModelConcurrencyError) as info:
            await repo.save(product("b", 1), expected_version=0)
        assert info.value.actual_version == 1
        assert await repo.save(product("b", 2, name="two"), expected_version=1)
        with pytest.raises(ReadModelConcurrencyError):
            await repo.save(product("b", 3), expected_version=1)
        with pytest.raises(ReadModelConcurrencyError) as missing:
            await repo.save(product("c", 2), expected_version=1)
        assert missing.value.actual_version is None

    async def test_concurrent_saves_keep_highest_version(self, repo):
        await asyncio.gather(*(repo.save(product("race", v, v=v)) for v in range(1, 11)))
        assert (await repo.get_by_id("race")).version == 10

    async def test_returned_models_are_copies(self, repo):
        await repo.save(product("m", name="orig"))
        loaded = await repo.get_by_id("m")
        loaded.data["name"] = "mutated"
        assert (await repo.get_by_id("m")).data["name"] == "orig"

    async def test_delete(self, repo):
        await repo.save(product("d"))
        assert await repo.delete(ReadModelId(value="d")) is True
        assert await repo.delete("d") is False
        assert await repo.get_by_id("d") is None

    async def test_find_and_count(self, catalog):
        assert [m.id.value for m in await catalog.find({"category": "hats"})] == ["p3", "p4"]
        assert await catalog.count({"category": "shoes"}) == 2
        assert await catalog.count() == 5
        assert len(await catalog.find(limit=2)) == 2

    async def test_range_and_operator_filters(self, catalog):
        ids = lambda models: sorted(m.id.value for m in models)  # noqa: E731
        assert ids(await catalog.find({"price": {"gte": 15.5, "lte": 30}})) == ["p1", "p3", "p4"]
        assert ids(await catalog.find({"price": {"$gt": 25, "$lt": 50}})) == ["p1"]
        assert ids(await catalog.find({"category": {"in": ["tools", "hats"]}})) == [
            "p3",
            "p4",
            "p5",
        ]
        assert ids(await catalog.find({"category": {"nin": ["shoes", "hats"]}})) == ["p5"]
        # Mongo semantics: a missing field fails ranges and equality but satisfies "ne".
        assert ids(await catalog.find({"stock": {"gte": 0}})) == ["p1", "p3", "p4", "p5"]
        assert ids(await catalog.find({"stock": {"ne": 3}})) == ["p2", "p3", "p4", "p5"]

    async def test_unknown_operator_is_rejected(self, catalog):
        with pytest.raises(ValueError, match="operator"):
            await catalog.find({"price": {"$where": "1"}})

    async def test_search_text_is_case_insensitive_substring(self, catalog):
        page = await catalog.search(SearchQuery(search_term="shoe", sort="name"))
        assert [m.id.value for m in page.items] == ["p2", "p1", "p5"]
        assert page.total == 3

    async def test_search_term_in_description_and_regex_chars_are_literal(self, catalog):
        page = await catalog.search(SearchQuery(search_term="(WIDE)"))
        assert [m.id.value for m in page.items] == ["p2"]
        assert (await catalog.search(SearchQuery(search_term=".*"))).total == 0
        assert (await catalog.search(SearchQuery(search_term="sun hat"))).total == 1

    async def test_search_filters_sort_and_pages(self, catalog):
        query = SearchQuery(filters={"price": {"lt": 40}}, sort=[("price", "desc")], page_size=2)
        first = await catalog.search(query)
        second = await catalog.search(query.model_copy(update={"page": 2}))
        assert [m.id.value for m in first.items] == ["p1", "p4"]
        assert [m.id.value for m in second.items] == ["p3", "p5"]
        assert (first.total, first.pages, first.page, first.page_size) == (4, 2, 1, 2)
        beyond = await catalog.search(query.model_copy(update={"page": 9}))
        assert beyond.items == []
        assert beyond.total == 4

    async def test_multi_key_sort_with_id_tiebreak(self, catalog):
        page = await catalog.search(SearchQuery(sort="category,-price", page_size=100))
        assert [m.id.value for m in page.items] == ["p4", "p3", "p2", "p1", "p5"]
        unsorted = await catalog.search(SearchQuery(page_size=100))
        assert [m.id.value for m in unsorted.items] == ["p1", "p2", "p3", "p4", "p5"]

    async def test_clear(self, catalog):
        await catalog.clear()
        assert await catalog.count() == 0


@pytest.mark.unit
class TestInMemoryReadModelRepository(ReadModelRepositoryContract):
    @pytest.fixture
    async def repo(self):
        return InMemoryReadModelRepository(Product)


@pytest.mark.integration
class TestMongoReadModelRepository(ReadModelRepositoryContract):
    @pytest.fixture
    async def repo(self, mongo_db):
        repository = MongoReadModelRepository(
            Product,
            mongo_db[f"products_{uuid.uuid4().hex[:8]}"],
            index_fields=["category", "price"],
        )
        await repository.ensure_indexes()
        return repository
