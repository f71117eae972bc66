import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import orjson
import pytest
from pydantic import ConfigDict, ValidationError
from tandem.errors import EventSchemaError, UnknownEventType
from tandem.events import DomainEvent, EventRegistry, default_registry, register_event
from tandem.messages import Command, Query

pytestmark = pytest.mark.unit


class CreateProductCommand(Command[str]):
    name: str
    price: Decimal


class GetProduct(Query[dict[str, Any]]):
    id: str


class CatalogItemCreated(DomainEvent):
    id: str
    name: str
    price: Decimal


def test_commands_are_immutable_and_compare_by_value() -> None:
    command = CreateProductCommand(name="Lamp", price=Decimal("9.99"))
    assert command == CreateProductCommand(name="Lamp", price=Decimal("9.99"))
    assert command.correlation_id is None
    assert command.command_id is None
    with pytest.raises(ValidationError):
        command.name = "x"  # type: ignore[misc]
    assert GetProduct(id="1", correlation_id="c").correlation_id == "c"


def test_event_constructs_like_the_seed_with_metadata_defaults() -> None:
    product_id = str(uuid.uuid4())
    event = CatalogItemCreated(
        aggregate_id=product_id,
        aggregate_type="Product",
        id=product_id,
        name="Lamp",
        price=Decimal("29.99"),
    )
    assert event.version == 1
    assert uuid.UUID(event.event_id)
    assert event.occurred_at.tzinfo is UTC
    assert event.event_type == CatalogItemCreated.event_type == "CatalogItemCreated"
    with pytest.raises(ValidationError):
        event.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CatalogItemCreated(
            aggregate_id="a", aggregate_type="P", id="a", name="n", price=1, version=0
        )


def test_to_dict_is_json_safe_and_round_trips_through_the_default_registry() -> None:
    event = CatalogItemCreated(
        aggregate_id="p1",
        aggregate_type="Product",
        id="p1",
        name="Lamp",
        price=Decimal("29.99"),
        occurred_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        correlation_id="corr",
    )
    data = event.to_dict()
    assert data["price"] == "29.99"
    assert data["occurred_at"].startswith("2025-01-02T03:04:05")
    assert data["event_type"] == "CatalogItemCreated"
    assert data["schema_version"] == 1
    orjson.dumps(data)
    assert default_registry.deserialize(data) == event
    assert default_registry.deserialize_json(event.to_json()) == event


def test_unknown_or_missing_type_raises_typed_error() -> None:
    registry = EventRegistry()
    with pytest.raises(UnknownEventType):
        registry.deserialize({"event_type": "Nope"})
    with pytest.raises(UnknownEventType):
        registry.deserialize({"aggregate_id": "x"})


def test_explicit_registry_refuses_a_second_class_for_one_name() -> None:
    registry = EventRegistry()

    @register_event(registry=registry)
    class Renamed(DomainEvent):
        event_type: ClassVar[str] = "Renamed"

    class Other(DomainEvent):
        event_type: ClassVar[str] = "Renamed"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Other)
    assert registry.resolve("Renamed") is Renamed
    assert "Renamed" in registry


def test_upcasters_chain_old_versions_to_current() -> None:
    registry = EventRegistry()

    class PriceSet(DomainEvent):
        schema_version: ClassVar[int] = 3
        amount: Decimal
        currency: str

    registry.register(PriceSet)
    # v1 stored "price" as float; v2 renamed it to "amount"; v3 added currency.
    registry.register_upcaster("PriceSet", 1, lambda d: {**d, "amount": str(d.pop("price"))})

    @registry.upcaster("PriceSet", 2)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}

    stored = {"event_type": "PriceSet", "aggregate_id": "a", "aggregate_type": "P", "price": 2.5}
    event = registry.deserialize(stored)
    assert isinstance(event, PriceSet)
    assert (event.amount, event.currency) == (Decimal("2.5"), "EUR")
    current = registry.deserialize(event.to_dict())
    assert current == event
    with pytest.raises(EventSchemaError, match="newer"):
        registry.deserialize({**event.to_dict(), "schema_version": 4})
    with pytest.raises(ValueError, match="already"):
        registry.register_upcaster("PriceSet", 1, lambda d: d)


def test_missing_upcaster_step_is_a_schema_error() -> None:
    registry = EventRegistry()

    class Evolved(DomainEvent):
        schema_version: ClassVar[int] = 2

    registry.register(Evolved)
    with pytest.raises(EventSchemaError, match="no upcaster"):
        registry.deserialize({"event_type": "Evolved", "aggregate_id": "a", "aggregate_type": "X"})


def test_strict_events_still_deserialize() -> None:
    registry = EventRegistry()

    class Strict(DomainEvent):
        model_config = ConfigDict(frozen=True, extra="forbid")
        n: int

    registry.register(Strict)
    event = Strict(aggregate_id="a", aggregate_type="X", n=1)
    assert registry.deserialize(event.to_dict()) == event
