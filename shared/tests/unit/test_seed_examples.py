"""The seed document's examples, as written; only the import lines are ours.

The Product classes are copied from the document's "Usage Examples" (with ``Generic`` syntax
for Python 3.11 where the document used 3.12's). ``test_create_product_command`` is its
"Testing Example" verbatim; ``test_fastapi_integration_as_written`` runs its "FastAPI
Integration" block verbatim, after building the handlers and dispatcher that block takes as
given (``# fmt: off`` keeps the document's layout in both). The tests of the query handlers are
ours: the document defines the handlers but never runs them.
"""
# The seed's spelling is kept on purpose: ``lambda: MockUnitOfWork()`` and typing's Dict,
# List and Optional.
# ruff: noqa: PLW0108, UP006, UP035, UP045

from datetime import UTC, datetime
from decimal import Decimal
from typing import Dict, List, Optional
from uuid import uuid4

import pytest
import tandem.mediator
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tandem import (
    Command,
    DomainEvent,
    EventSourcingReadModelCommandHandler,
    PaginatedResult,
    Projection,
    Query,
    ReadModel,
    ReadModelId,
    ReadModelQuery,
    ReadModelQueryHandler,
    ReadModelService,
    SearchQuery,
    UnitOfWork,
    get_mediator,
)
from tandem.api import CQRSEndpointFactory
from tandem.testing import CQRSTestContainer, MockUnitOfWork, QueryTestHarness

pytestmark = pytest.mark.unit


class ProductReadModel(ReadModel):
    pass


# Define a command
class CreateProductCommand(Command[str]):
    name: str
    description: str
    price: Decimal
    category: str


# Define an event
class ProductCreatedEvent(DomainEvent):
    id: str
    name: str
    description: str
    price: Decimal
    category: str


# Define a command handler
class CreateProductCommandHandler(EventSourcingReadModelCommandHandler[CreateProductCommand, str]):
    async def _handle(self, command: CreateProductCommand, uow: UnitOfWork) -> str:
        # Generate ID
        product_id = str(uuid4())

        # Create event
        event = ProductCreatedEvent(
            aggregate_id=product_id,
            aggregate_type="Product",
            id=product_id,
            name=command.name,
            description=command.description,
            price=command.price,
            category=command.category,
        )

        # Add event to be published
        self.add_event(event)

        # Return the product ID
        return product_id


# Define a projection
class ProductProjection(Projection[ProductReadModel, ProductCreatedEvent]):
    async def apply(self, event: ProductCreatedEvent) -> Optional[ProductReadModel]:
        # Create a read model from the event
        read_model = ProductReadModel(
            id=ReadModelId(value=event.id),
            version=1,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
            data={
                "id": event.id,
                "name": event.name,
                "description": event.description,
                "price": float(event.price),
                "category": event.category,
            },
        )

        # Save the read model using the repository
        await self.repository.save(read_model)

        return read_model


# Define a query
class GetProductByIdQuery(Query[Optional[ProductReadModel]]):
    id: str


# Define a read model query handler
class GetProductByIdQueryHandler(
    ReadModelQueryHandler[GetProductByIdQuery, Optional[Dict], ProductReadModel]
):
    def _to_read_model_query(self, query: GetProductByIdQuery) -> ReadModelQuery:
        return ReadModelQuery(id=ReadModelId(value=query.id), model_type=ProductReadModel)


# Define a search query
class SearchProductsQuery(Query[List[ProductReadModel]]):
    search_term: str
    category: Optional[str] = None
    page: int = 1
    page_size: int = 10


# Define a search query handler
class SearchProductsQueryHandler(
    ReadModelQueryHandler[SearchProductsQuery, PaginatedResult, ProductReadModel]
):
    def _to_read_model_query(self, query: SearchProductsQuery) -> SearchQuery:
        filters = {}
        if query.category:
            filters["category"] = query.category

        return SearchQuery(
            search_term=query.search_term,
            filters=filters,
            page=query.page,
            page_size=query.page_size,
            model_type=ProductReadModel,
        )


# fmt: off
async def test_create_product_command():
    # Set up test container
    container = CQRSTestContainer()

    # Create repositories and services
    product_repository = container.create_read_model_repository(ProductReadModel)
    projection_service = container.create_projection_service()

    # Create handler
    handler = CreateProductCommandHandler(
        unit_of_work_factory=lambda: MockUnitOfWork(),
        event_store=container.event_store,
        projection_service=projection_service
    )

    # Register handler
    container.register_command_handler(CreateProductCommand, handler)

    # Register projection
    projection = ProductProjection(
        repository=product_repository,
        event_type=ProductCreatedEvent
    )
    await projection_service.register_projection(
        event_type=ProductCreatedEvent.__name__,
        projection=projection
    )

    # Create test harness
    harness = container.get_command_test_harness(CreateProductCommand)

    # Create command
    command = CreateProductCommand(
        name="Test Product",
        description="A test product",
        price=Decimal("29.99"),
        category="Test"
    )

    # Execute command
    result = await harness.execute(command)

    # Verify result
    assert result.is_success()
    product_id = result.value

    # Verify events
    harness.assert_events_published(1)
    harness.assert_event_published(ProductCreatedEvent)

    # Verify read model
    read_model = await product_repository.get_by_id(ReadModelId(value=product_id))
    assert read_model is not None
    assert read_model.data["name"] == "Test Product"
    assert read_model.data["price"] == 29.99
# fmt: on


# The query handlers the document defines, driven the way an application would.


async def _catalog(container: CQRSTestContainer):
    """A repository holding three products, projected from events by the seed's projection."""
    repository = container.create_read_model_repository(ProductReadModel)
    projection = ProductProjection(repository=repository, event_type=ProductCreatedEvent)
    products = [
        ("Desk lamp", "A lamp for a desk", "29.99", "Lighting"),
        ("Floor lamp", "A tall lamp", "89.00", "Lighting"),
        ("Oak desk", "A desk without a lamp", "150.00", "Furniture"),
    ]
    ids = []
    for name, description, price, category in products:
        product_id = str(uuid4())
        await projection.apply(
            ProductCreatedEvent(
                aggregate_id=product_id,
                aggregate_type="Product",
                id=product_id,
                name=name,
                description=description,
                price=Decimal(price),
                category=category,
            )
        )
        ids.append(product_id)
    return repository, ids


async def test_get_product_by_id_query_handler() -> None:
    container = CQRSTestContainer()
    repository, (lamp_id, *_) = await _catalog(container)
    handler = GetProductByIdQueryHandler(ReadModelService(repository))
    assert handler.read_model_service.repository is repository
    container.register_query_handler(GetProductByIdQuery, handler)

    found = await container.mediator.execute_query(GetProductByIdQuery(id=lamp_id))
    assert found.is_success()
    assert isinstance(found.value, ProductReadModel)
    assert found.value.data == {
        "id": lamp_id,
        "name": "Desk lamp",
        "description": "A lamp for a desk",
        "price": 29.99,
        "category": "Lighting",
    }

    missing = await container.get_query_test_harness(GetProductByIdQuery).execute(
        GetProductByIdQuery(id="no-such-product")
    )
    assert missing.is_failure()
    assert (missing.error.code, missing.error.status_code) == ("not_found", 404)
    assert missing.error.details == {"id": "no-such-product", "model_type": "ProductReadModel"}

    # ``Optional[Dict]`` in the seed's type arguments: the mapper is what makes it a dict.
    as_dict = GetProductByIdQueryHandler(ReadModelService(repository), mapper=lambda m: m.data)
    assert (await as_dict.handle(GetProductByIdQuery(id=lamp_id))).value["name"] == "Desk lamp"


async def test_search_products_query_handler() -> None:
    container = CQRSTestContainer()
    repository, (desk_lamp, floor_lamp, oak_desk) = await _catalog(container)
    handler = SearchProductsQueryHandler(ReadModelService(repository))
    harness = QueryTestHarness(handler)

    lighting = await harness.execute(SearchProductsQuery(search_term="lamp", category="Lighting"))
    assert lighting.is_success()
    page = lighting.value
    assert isinstance(page, PaginatedResult)
    assert sorted(model.id.value for model in page.items) == sorted([desk_lamp, floor_lamp])
    assert (page.total, page.page, page.page_size, page.pages) == (2, 1, 10, 1)

    # Without a category the free text also finds "lamp" in the desk's description.
    everything = (await harness.execute(SearchProductsQuery(search_term="LAMP"))).value
    assert everything.total == 3
    assert oak_desk in {model.id.value for model in everything.items}

    second = (
        await harness.execute(SearchProductsQuery(search_term="lamp", page=2, page_size=2))
    ).value
    assert (len(second.items), second.total, second.pages) == (1, 3, 2)

    none = (await harness.execute(SearchProductsQuery(search_term="sofa"))).value
    assert (none.items, none.total, none.pages) == ([], 0, 0)

    names = SearchProductsQueryHandler(
        ReadModelService(repository), mapper=lambda m: m.data["name"]
    )
    mapped = (
        await names.handle(SearchProductsQuery(search_term="desk", category="Furniture"))
    ).value
    assert mapped.items == ["Oak desk"]


def _as_dict(model: ProductReadModel) -> Dict:
    return model.model_dump(mode="json")


async def test_fastapi_integration_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    # The seed uses the process-wide mediator; give it a fresh one for this test only.
    monkeypatch.setattr(tandem.mediator, "_shared", {})

    # What the seed's block takes as given: the three handlers and the event dispatcher.
    container = CQRSTestContainer()
    product_repository = container.create_read_model_repository(ProductReadModel)
    projection_service = container.create_projection_service()
    create_product_handler = CreateProductCommandHandler(
        unit_of_work_factory=MockUnitOfWork,
        event_store=container.event_store,
        projection_service=projection_service,
    )
    # The seed's handlers answer ``Optional[Dict]`` / ``PaginatedResult`` of dicts: the mapper
    # does that (the default one returns the model itself, which ``response_model=Dict`` refuses).
    products = ReadModelService(product_repository)
    get_product_handler = GetProductByIdQueryHandler(products, mapper=_as_dict)
    search_products_handler = SearchProductsQueryHandler(products, mapper=_as_dict)
    event_dispatcher = container.event_dispatcher
    await projection_service.register_projection(
        event_type=ProductCreatedEvent.__name__,
        projection=ProductProjection(repository=product_repository, event_type=ProductCreatedEvent),
    )

    # fmt: off
    # Create a FastAPI app
    app = FastAPI()

    # Create a mediator
    mediator = get_mediator()

    # Register handlers
    mediator.register_command_handler(CreateProductCommand, create_product_handler)
    mediator.register_query_handler(GetProductByIdQuery, get_product_handler)
    mediator.register_query_handler(SearchProductsQuery, search_products_handler)

    # Create a router
    router = APIRouter(prefix="/api/products", tags=["Products"])

    # Create endpoints
    endpoint_factory = CQRSEndpointFactory()

    # Command endpoint
    endpoint_factory.create_command_endpoint(
        router=router,
        path="",
        command_type=CreateProductCommand,
        response_model=str,
        status_code=201
    )

    # Query endpoints
    endpoint_factory.create_query_endpoint(
        router=router,
        path="/{id}",
        query_type=GetProductByIdQuery,
        response_model=Dict
    )

    endpoint_factory.create_query_endpoint(
        router=router,
        path="/search",
        query_type=SearchProductsQuery,
        response_model=PaginatedResult[Dict]
    )

    # Add the router to the app
    app.include_router(router)

    # Add a WebSocket endpoint for real-time updates
    endpoint_factory.create_websocket_endpoint(
        router=app,
        path="/ws/products",
        event_dispatcher=event_dispatcher,
        allowed_event_types=["ProductCreated", "ProductUpdated", "ProductDeleted"]
    )
    # fmt: on

    with TestClient(app) as client:
        body = {"name": "Lamp", "description": "A lamp", "price": "29.99", "category": "Lighting"}
        created = client.post("/api/products", json=body)
        assert created.status_code == 201
        product_id = created.json()
        assert isinstance(product_id, str)

        fetched = client.get(f"/api/products/{product_id}")
        assert fetched.status_code == 200
        assert fetched.json()["data"] == {"id": product_id, **body, "price": 29.99}

        invalid = client.post("/api/products", json={"name": "Lamp"})
        assert invalid.status_code == 422

        # The seed registers "/{id}" before "/search": routes match in order, so "/search" is
        # answered by the by-id query, for a product called "search".
        shadowed = client.get("/api/products/search", params={"search_term": "Lamp"})
        assert shadowed.status_code == 404
        assert shadowed.json()["error"]["details"]["id"] == "search"
        assert "SearchProductsQuery" in {getattr(route, "name", "") for route in router.routes}

        # The WebSocket subscribes to the allowed names; the seed's event is not among them
        # (its type is its class name), so a client never hears of a created product.
        with client.websocket_connect("/ws/products") as ws:
            assert ws.receive_json() == {
                "type": "subscribed",
                "event_types": ["ProductCreated", "ProductUpdated", "ProductDeleted"],
            }
            ws.send_text("ping")
            assert ws.receive_json() == {"type": "pong"}
            created_event = (await container.event_store.get_events(product_id))[0]
            assert isinstance(created_event, ProductCreatedEvent)
            assert event_dispatcher.subscribers(created_event) == []
            assert len(event_dispatcher.subscribers({"event_type": "ProductCreated"})) == 1
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws/products?event_types=ProductCreatedEvent"),
        ):
            pass
        assert refused.value.code == 1008
    assert get_mediator() is mediator
