"""The Product aggregate's rules, as given/when/then scenarios (no store, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tandem.errors import DomainError
from tandem.testing.aggregate import AggregateScenario
from tandem_catalog import Product
from tandem_catalog.app import app as catalog
from tandem_catalog.events import (
    DEFAULT_CATEGORY,
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)

pytestmark = pytest.mark.unit

PID = "p-1"


def created(price: str = "10.00", name: str = "Desk") -> ProductCreated:
    return ProductCreated(
        aggregate_id=PID,
        aggregate_type="Product",
        name=name,
        description="oak",
        price=Decimal(price),
        category="furniture",
    )


def scenario() -> AggregateScenario[Product]:
    return AggregateScenario(Product, PID)


def test_create_records_product_created_with_two_decimal_price() -> None:
    scenario().when(
        lambda _: Product.create(
            PID, name="  Desk ", description="oak", price=Decimal("10.0"), category="furniture"
        )
    ).then(created("10.00"))


@pytest.mark.parametrize(
    ("price", "code"),
    [
        ("0", "invalid_price"),
        ("-1", "invalid_price"),
        ("1000000000.01", "invalid_price"),
        ("1.001", "invalid_price_precision"),
        ("NaN", "invalid_price"),
    ],
)
def test_create_refuses_bad_prices(price: str, code: str) -> None:
    scenario().when(
        lambda _: Product.create(
            PID, name="Desk", description="", price=Decimal(price), category="c"
        )
    ).then_raises(DomainError, code=code)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_refuses_bad_names(name: str) -> None:
    scenario().when(
        lambda _: Product.create(PID, name=name, description="", price=Decimal(1), category="c")
    ).then_raises(DomainError, code="invalid_name")


def test_name_of_200_characters_is_accepted() -> None:
    scenario().when(
        lambda _: Product.create(
            PID, name="x" * 200, description="oak", price=Decimal(1), category="furniture"
        )
    ).then(created("1.00", name="x" * 200))


def test_change_price_records_old_and_new_price() -> None:
    scenario().given(created("10.00")).when(lambda p: p.change_price(Decimal("12.5"))).then(
        ProductPriceChanged(
            aggregate_id=PID,
            aggregate_type="Product",
            old_price=Decimal("10.00"),
            price=Decimal("12.50"),
        )
    )


def test_same_price_records_nothing() -> None:
    scenario().given(created("10.00")).when(lambda p: p.change_price(Decimal(10))).then_nothing()


def test_update_details_records_only_changed_fields() -> None:
    scenario().given(created()).when(
        lambda p: p.update_details(name="Desk", description="walnut", category="furniture")
    ).then(ProductDetailsUpdated(aggregate_id=PID, aggregate_type="Product", description="walnut"))


def test_update_refuses_bad_name() -> None:
    scenario().given(created()).when(lambda p: p.update_details(name="")).then_raises(
        DomainError, code="invalid_name"
    )


def test_discontinue() -> None:
    scenario().given(created()).when(lambda p: p.discontinue("recalled")).then(
        ProductDiscontinued(aggregate_id=PID, aggregate_type="Product", reason="recalled")
    )


@pytest.mark.parametrize(
    "action",
    [
        lambda p: p.update_details(name="New"),
        lambda p: p.change_price(Decimal(5)),
        lambda p: p.discontinue(),
    ],
)
def test_discontinued_product_takes_no_changes(action: object) -> None:
    error = (
        scenario()
        .given(
            created(),
            ProductDiscontinued(aggregate_id=PID, aggregate_type="Product"),
        )
        .when(action)  # type: ignore[arg-type]
        .then_raises(DomainError, code="product_discontinued")
    )
    assert isinstance(error, DomainError)
    assert error.status_code == 409


def test_state_is_rebuilt_from_history() -> None:
    product = Product.from_history(
        PID,
        [
            created("10.00").model_copy(update={"version": 1}),
            ProductPriceChanged(
                aggregate_id=PID,
                aggregate_type="Product",
                version=2,
                old_price=Decimal(10),
                price=Decimal("7.25"),
            ),
        ],
    )
    assert (product.version, product.price, product.name) == (2, Decimal("7.25"), "Desk")


def test_a_v1_product_created_is_read_through_the_upcaster() -> None:
    """Schema evolution: v1 had no category; stored v1 events still load, filed under the
    default category, and replay into a Product."""
    stored_v1 = {
        "event_type": "ProductCreated",
        "schema_version": 1,
        "aggregate_id": PID,
        "aggregate_type": "Product",
        "version": 1,
        "name": "Lamp",
        "description": "",
        "price": "3.50",
    }
    event = catalog.registry.deserialize(stored_v1)
    assert isinstance(event, ProductCreated)
    assert event.category == DEFAULT_CATEGORY
    assert Product.from_history(PID, [event]).category == DEFAULT_CATEGORY
