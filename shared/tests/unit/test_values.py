"""tandem.values.Money: the amounts a schema publishes are the amounts the rules accept."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError
from tandem.values import Money, money_string_pattern

pytestmark = pytest.mark.unit

STRINGS = ["0", "0.0", "00.00", "0.01", "0.001", "0.010", "1", "1.5", "1.50", "1.500", "1.234",
           "+2", "007.25", "999999.99", "1000000", "1000000.0", "1000000.01", "10000000",
           "999999999.99", "1000000000", "1000000000.01", "0.1", "0.10", "-1", "1.", ".5",
           "1e3"]  # fmt: skip


def _rule(text: str, maximum: int) -> bool:
    """The rule an aggregate applies: above 0, at most ``maximum``, at most 2 decimals."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return False
    exponent = amount.normalize().as_tuple().exponent
    shaped = re.fullmatch(r"[+-]?[0-9]+(?:\.[0-9]+)?", text) is not None
    return shaped and 0 < amount <= maximum and isinstance(exponent, int) and exponent >= -2


@pytest.mark.parametrize("maximum", [1_000_000, 1_000_000_000])
@pytest.mark.parametrize("text", STRINGS)
def test_the_published_string_pattern_is_the_rule(text: str, maximum: int) -> None:
    published = re.search(money_string_pattern(maximum), text) is not None
    assert published == _rule(text, maximum)


class Line(BaseModel):
    price: Annotated[Decimal, Money(1_000_000)]


def test_a_number_or_a_decimal_string_is_read_exactly_anything_else_refused() -> None:
    assert Line(price="1.50").price == Decimal("1.50")
    assert Line.model_validate_json('{"price": 0.07}').price == Decimal("0.07")
    # The rules are the aggregate's: a shape that breaks them still reaches it (its code).
    assert Line(price="1.005").price == Decimal("1.005")
    for bad in ("1e3", " 1", "1_0", "nan", "inf", "", "\u0661"):  # an Arabic-Indic digit one
        with pytest.raises(ValidationError):
            Line(price=bad)
    with pytest.raises(ValidationError):
        Line.model_validate_json('{"price": NaN}')


def test_the_json_schema_states_both_forms_and_the_range() -> None:
    schema = Line.model_json_schema()["properties"]["price"]
    number, string = schema["anyOf"]
    assert number == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1_000_000,
        "multipleOf": 0.01,
    }
    assert string == {"type": "string", "pattern": money_string_pattern(1_000_000)}
    assert "at most 1000000" in schema["description"]


def test_a_maximum_below_ten_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        Money(9)
