"""The seed document's examples, as written; only the import lines are ours.

The Product classes are copied from the document's "Usage Examples" (with ``Generic`` syntax
for Python 3.11 where the document used 3.12's), and ``test_create_product_command`` is the
document's "Testing Example" verbatim.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Dict, List, Optional  # noqa: UP035 - the seed's spelling, kept on purpose
from uuid import uuid4

import pytest
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
    SearchQuery,
    UnitOfWork,
)
from tandem.testing import CQRSTestContainer, MockUnitOfWork

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
    async def apply(self, event: ProductCreatedEvent) -> Optional[ProductReadModel]:  # noqa: UP045
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
class GetProductByIdQuery(Query[Optional[ProductReadModel]]):  # noqa: UP045
    id: str


# Define a read model query handler
class GetProductByIdQueryHandler(
    ReadModelQueryHandler[GetProductByIdQuery, Optional[Dict], ProductReadModel]  # noqa: UP006, UP045
):
    def _to_read_model_query(self, query: GetProductByIdQuery) -> ReadModelQuery:
        return ReadModelQuery(id=ReadModelId(value=query.id), model_type=ProductReadModel)


# Define a search query
class SearchProductsQuery(Query[List[ProductReadModel]]):  # noqa: UP006
    search_term: str
    category: Optional[str] = None  # noqa: UP045
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


async def test_create_product_command():
    # Set up test container
    container = CQRSTestContainer()

    # Create repositories and services
    product_repository = container.create_read_model_repository(ProductReadModel)
    projection_service = container.create_projection_service()

    # Create handler
    handler = CreateProductCommandHandler(
        unit_of_work_factory=MockUnitOfWork,
        event_store=container.event_store,
        projection_service=projection_service,
    )

    # Register handler
    container.register_command_handler(CreateProductCommand, handler)

    # Register projection
    projection = ProductProjection(repository=product_repository, event_type=ProductCreatedEvent)
    await projection_service.register_projection(
        event_type=ProductCreatedEvent.__name__, projection=projection
    )

    # Create test harness
    harness = container.get_command_test_harness(CreateProductCommand)

    # Create command
    command = CreateProductCommand(
        name="Test Product",
        description="A test product",
        price=Decimal("29.99"),
        category="Test",
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
