from decimal import Decimal

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Header, HTTPException
from pydantic import Field
from tandem import Command, DomainError, Mediator, PaginatedResult, Query, get_mediator
from tandem.api import CQRSEndpointFactory
from tandem.api import get_mediator as mediator_dependency

pytestmark = pytest.mark.unit


class CreateProduct(Command[str]):
    name: str = Field(min_length=1)
    price: Decimal = Field(gt=0)


class ChangePrice(Command[int]):
    id: str
    price: Decimal = Field(gt=0)


class GetProduct(Query[dict]):
    id: str
    detail: bool = False


class SearchProducts(Query[PaginatedResult[dict]]):
    search_term: str = ""
    tags: list[str] = []
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=100)


def build_app(mediator: Mediator, via_state: bool = True) -> FastAPI:
    async def create(command: CreateProduct):
        return f"id-{command.name}"

    async def change(command: ChangePrice):
        if command.id == "gone":
            raise DomainError("discontinued", "product is discontinued", status_code=409)
        return 2

    async def get(query: GetProduct):
        if query.id == "missing":
            from tandem import Error, Failure

            return Failure(Error(code="not_found", message="no", status_code=404))
        return {"id": query.id, "detail": query.detail}

    async def search(query: SearchProducts):
        items = [{"term": query.search_term, "tags": query.tags}]
        return PaginatedResult[dict].create(items, 1, query.page, query.page_size)

    mediator.register_command_handler(CreateProduct, create)
    mediator.register_command_handler(ChangePrice, change)
    mediator.register_query_handler(GetProduct, get)
    mediator.register_query_handler(SearchProducts, search)

    def require_token(x_token: str | None = Header(default=None)):
        if x_token != "secret":
            raise HTTPException(status_code=401, detail="unauthorized")

    app = FastAPI()
    if via_state:
        app.state.mediator = mediator
    else:
        app.dependency_overrides[mediator_dependency] = lambda: mediator
    router = APIRouter(prefix="/api/products")
    factory = CQRSEndpointFactory()
    factory.create_command_endpoint(router, "", CreateProduct, response_model=str, status_code=201)
    factory.create_command_endpoint(
        router,
        "/{id}/price",
        ChangePrice,
        response_model=int,
        method="PUT",
        auth_dependency=require_token,
    )
    factory.create_query_endpoint(
        router, "/search", SearchProducts, response_model=PaginatedResult[dict]
    )
    factory.create_query_endpoint(router, "/{id}", GetProduct, response_model=dict)
    app.include_router(router)
    return app


@pytest.fixture(params=[True, False], ids=["app-state", "dependency-override"])
async def client(request):
    app = build_app(get_mediator(new_instance=True), via_state=request.param)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_command_created(client):
    response = await client.post("/api/products", json={"name": "shoe", "price": "9.5"})
    assert (response.status_code, response.json()) == (201, "id-shoe")


async def test_command_body_validation_is_422_with_fields(client):
    response = await client.post("/api/products", json={"name": "", "price": -1})
    assert response.status_code == 422
    locs = sorted(tuple(err["loc"]) for err in response.json()["detail"])
    assert locs == [("body", "name"), ("body", "price")]
    assert (await client.post("/api/products", content=b"{nope")).status_code == 422
    assert (await client.post("/api/products", json=[1])).status_code == 422


async def test_command_path_params_merge_and_auth(client):
    url = "/api/products/p1/price"
    assert (await client.put(url, json={"price": 3})).status_code == 401
    ok = await client.put(url, json={"price": 3}, headers={"x-token": "secret"})
    assert (ok.status_code, ok.json()) == (200, 2)
    conflict = await client.put(url, json={"id": "p2", "price": 3}, headers={"x-token": "secret"})
    assert conflict.status_code == 422
    assert conflict.json()["detail"][0]["loc"] == ["body", "id"]


async def test_failure_maps_to_status_and_error_body(client):
    response = await client.put(
        "/api/products/gone/price", json={"price": 3}, headers={"x-token": "secret"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "discontinued"
    missing = await client.get("/api/products/missing")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "no", "details": {}}}


async def test_query_params_are_validated_and_merged(client):
    ok = await client.get("/api/products/p1", params={"detail": "true"})
    assert ok.json() == {"id": "p1", "detail": True}
    bad = await client.get("/api/products/p1", params={"detail": "maybe"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "detail"]
    page = await client.get("/api/products/search?search_term=sh&tags=a&tags=b&page=2")
    body = page.json()
    assert body["items"] == [{"term": "sh", "tags": ["a", "b"]}]
    assert (body["page"], body["page_size"], body["total"]) == (2, 10, 1)
    for params in ({"page": "0"}, {"page_size": "500"}, {"page": "x"}):
        response = await client.get("/api/products/search", params=params)
        assert response.status_code == 422, params


async def test_openapi_documents_parameters(client):
    schema = (await client.get("/openapi.json")).json()
    params = schema["paths"]["/api/products/search"]["get"]["parameters"]
    assert {p["name"] for p in params} >= {"search_term", "page", "page_size"}
    assert "requestBody" in schema["paths"]["/api/products"]["post"]
