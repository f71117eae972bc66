import pytest
from tandem import (
    InMemoryCache,
    InMemoryReadModelRepository,
    PaginatedResult,
    Query,
    ReadModel,
    ReadModelId,
    ReadModelQuery,
    ReadModelQueryHandler,
    ReadModelService,
    SearchQuery,
    Success,
)
from tandem.testing import CQRSTestContainer

pytestmark = pytest.mark.unit


class Item(ReadModel):
    pass


def item(pid: str, version: int = 1, **data) -> Item:
    return Item(id=ReadModelId(value=pid), version=version, data={"name": pid, **data})


class GetItem(Query[dict]):
    id: str


class FindItems(Query[PaginatedResult[dict]]):
    term: str | None = None
    page_size: int = 10


class GetItemHandler(ReadModelQueryHandler[GetItem, dict, Item]):
    def _to_read_model_query(self, query: GetItem) -> ReadModelQuery:
        return ReadModelQuery(id=ReadModelId(value=query.id), model_type=Item)


class FindItemsHandler(ReadModelQueryHandler[FindItems, PaginatedResult[dict], Item]):
    def _to_read_model_query(self, query: FindItems) -> SearchQuery:
        return SearchQuery(
            search_term=query.term,
            filters={"price": {"$bad": 1}} if query.term == "!" else {},
            page_size=query.page_size,
            model_type=Item,
        )


@pytest.fixture
async def service():
    repo = InMemoryReadModelRepository(Item)
    await repo.save(item("apple", price=1.0))
    await repo.save(item("banana", price=2.0))
    return ReadModelService(repo, cache=InMemoryCache())


async def test_get_reads_through_and_invalidates_on_save(service):
    assert (await service.get("apple")).data["price"] == 1.0
    assert await service.cache.get("apple") is not None
    await service.repository.save(item("apple", 2, price=9.0))  # behind the service's back
    assert (await service.get("apple")).data["price"] == 1.0  # stale until invalidated
    await service.invalidate("apple")
    assert (await service.get(ReadModelId(value="apple"))).data["price"] == 9.0
    assert await service.save(item("apple", 3, price=3.0))
    assert (await service.get("apple")).data["price"] == 3.0
    assert await service.delete("apple")
    assert await service.get("apple") is None


async def test_undecodable_cache_entry_is_dropped(service):
    await service.cache.set("apple", {"garbage": True})
    assert (await service.get("apple")).id.value == "apple"


async def test_query_and_search_results(service):
    found = await service.query(ReadModelQuery(id=ReadModelId(value="banana")))
    assert found == Success(found.value)
    missing = await service.query(ReadModelQuery(id=ReadModelId(value="nope")))
    assert (missing.error.code, missing.error.status_code) == ("not_found", 404)
    page = await service.search(SearchQuery(search_term="an"))
    assert [m.id.value for m in page.value.items] == ["banana"]
    bad = await service.search(SearchQuery(filters={"price": {"$where": 1}}))
    assert bad.error.code == "invalid_search"


async def test_query_handlers_map_and_fail_cleanly(service):
    get = GetItemHandler(service, mapper=lambda model: model.data)
    assert (await get.handle(GetItem(id="apple"))).value == {"name": "apple", "price": 1.0}
    assert (await get.handle(GetItem(id="nope"))).error.status_code == 404
    find = FindItemsHandler(service, mapper=lambda model: model.data["name"])
    page = (await find.handle(FindItems(term="a"))).value
    assert (page.items, page.total, page.pages) == (["apple", "banana"], 2, 1)
    assert (await find.handle(FindItems(term="!"))).error.code == "invalid_search"

    async def broken(*args, **kwargs):
        raise RuntimeError("mongo down")

    service.query = broken
    failure = await get.handle(GetItem(id="apple"))
    assert (failure.error.code, failure.error.status_code) == ("read_model_query_error", 500)


async def test_query_harness_mock_and_restore(service):
    container = CQRSTestContainer()
    container.register_query_handler(GetItem, GetItemHandler(service))
    harness = container.get_query_test_harness(GetItem)
    assert container.get_query_test_harness(FindItems) is None
    harness.mock_read_model_service(None, "query", Success(item("fake")))
    assert (await harness.execute(GetItem(id="apple"))).value.id.value == "fake"
    harness.restore_read_model_service("query")
    assert (await harness.execute(GetItem(id="apple"))).value.id.value == "apple"
    with pytest.raises(ValueError, match="not mocked"):
        harness.restore_read_model_service("query")
    assert (await container.mediator.execute_query(GetItem(id="banana"))).is_success()


def test_search_query_validation():
    assert SearchQuery(sort="-price, name").sort == [("price", "desc"), ("name", "asc")]
    with pytest.raises(ValueError):
        SearchQuery(page=0)
    with pytest.raises(ValueError):
        SearchQuery(page_size=101)
    with pytest.raises(ValueError):
        SearchQuery(filters={"$where": "1"})
    assert PaginatedResult[int].create([], 0, 1, 10).pages == 0
    assert PaginatedResult[int].create([1], 21, 1, 10).pages == 3


async def test_document_reads_answer_the_api_shape_through_the_cache():
    """What the query runtime serves: the flat document, ``_id`` as ``id``, times as text."""
    repo = InMemoryReadModelRepository(Item)
    await repo.save(item("apple", 2, price=1.0))
    service = ReadModelService(repo, cache=InMemoryCache())
    document = await service.get_document("apple")
    assert document is not None
    assert {k: document[k] for k in ("id", "name", "price", "version")} == {
        "id": "apple",
        "name": "apple",
        "price": 1.0,
        "version": 2,
    }
    assert isinstance(document["created_at"], str)
    assert "_id" not in document
    assert await service.cache.get("apple") == document  # cached in the same shape
    assert await service.get_document("nope") is None
    page = await service.search_documents(SearchQuery(filters={"price": {"gte": 1}}))
    assert [d["id"] for d in page.items] == ["apple"]
