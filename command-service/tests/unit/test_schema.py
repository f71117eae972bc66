"""The schema of a command field is what the aggregate accepts, and the CORS defaults."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from tandem.errors import DomainError
from tandem.runtime.command.settings import DEV_CORS_ORIGINS, CommandServiceSettings
from tandem.values import money_string_pattern
from tandem_catalog import Product
from tandem_catalog.commands import NAME_PATTERN
from tandem_catalog.product import PRICE_MAX

pytestmark = pytest.mark.unit


def _aggregate_accepts(name: str = "Desk", price: Decimal = Decimal(1)) -> bool:
    try:
        Product.create("p", name=name, description="", price=price, category="c")
    except DomainError:
        return False
    return True


NAMES = ["", " ", "x", " x ", "x" * 200, "x" * 201, " " * 9 + "x" * 200 + "\t", "a\nb", "\xa0",
         "\u3000x\u2028", "\x1c", "\ufeff", "x" + " " * 300 + "y"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_name_pattern_is_the_aggregate_rule(name: str) -> None:
    assert (re.search(NAME_PATTERN, name) is not None) == _aggregate_accepts(name=name)


PRICES = ["0", "0.0", "00.00", "0.01", "0.001", "0.010", "1", "1.5", "1.50", "1.500", "1.234",
          "+2", "007.25", "999999999.99", "1000000000", "1000000000.0", "1000000000.01",
          "10000000000", "0.1", "0.10"]  # fmt: skip


@pytest.mark.parametrize("price", PRICES)
def test_price_string_pattern_is_the_aggregate_rule(price: str) -> None:
    accepted = _aggregate_accepts(price=Decimal(price))
    assert (re.search(money_string_pattern(int(PRICE_MAX)), price) is not None) == accepted


def test_cors_defaults_to_the_page_in_development_only() -> None:
    assert CommandServiceSettings(environment="development").allowed_origins == list(
        DEV_CORS_ORIGINS
    )
    assert CommandServiceSettings(environment="test").allowed_origins == []
    assert CommandServiceSettings(environment="development", cors_origins=[]).allowed_origins == []


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    settings = CommandServiceSettings(environment="test")
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]


def test_create_schema_leaves_the_id_to_the_server() -> None:
    from tandem.runtime.command.bootstrap import create_app
    from tandem.runtime.command.settings import CommandServiceSettings

    document = create_app(CommandServiceSettings(environment="test")).openapi()
    body = document["paths"]["/api/products"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert "product_id" in schema["properties"]
    assert "product_id" not in schema.get("required", [])
    assert {"name", "price"} <= set(schema["required"])
