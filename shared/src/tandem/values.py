"""Value types for commands: an amount of money, as clients send it and as OpenAPI publishes it.

Why a library type: an amount arrives as a JSON number or as a decimal string, and the schema
a client (or a fuzzer) reads from ``/openapi.json`` must be exactly the set a service
accepts end to end, or a client that follows it is refused. The shape (plain decimal
notation, no exponent, sign ``+`` at most) is checked here; the *rules* (above zero, at most
the maximum, two decimals) stay the aggregate's, so they hold for every caller and keep
their machine-readable codes, and the published schema spells those same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_SHAPE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def money_string_pattern(maximum: int) -> str:
    """The strings of amounts above 0, at most ``maximum``, with at most two decimals
    (trailing zeros do not count: "1.50" and "1.500" are one amount), an optional "+" and
    leading zeros: the strings an aggregate with those rules accepts."""
    top = str(maximum)
    below = len(top) - 2  # an amount below the maximum: a digit 1-9 and up to this many more
    return (
        rf"^\+?(?:0*(?:[1-9][0-9]{{0,{below}}}(?:\.[0-9]{{1,2}}0*)?"
        rf"|{top}(?:\.0+)?)|0+\.(?:0[1-9]|[1-9][0-9]?)0*)$"
    )


def _shape(value: Any) -> Any:
    """A string amount is plain decimal notation (no exponent, spaces, ``_`` or non-ASCII
    digits), so that the string set the schema publishes is the set accepted."""
    if isinstance(value, str) and _SHAPE.fullmatch(value) is None:
        raise ValueError("an amount is a decimal number such as 19.99")
    return value


@dataclass(frozen=True)
class Money:
    """Metadata for ``Annotated[Decimal, Money(maximum)]``: a command field holding an amount
    above 0 and at most ``maximum`` with two decimals (the aggregate refuses what breaks
    those rules; this checks the shape and publishes the rules)."""

    maximum: int

    def __post_init__(self) -> None:
        if self.maximum < 10:
            raise ValueError("Money(maximum): at least 10")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        decimal = core_schema.decimal_schema(allow_inf_nan=False, max_digits=20)
        return core_schema.no_info_before_validator_function(_shape, decimal)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                # multipleOf 0.01 on a JSON number means "its decimal spelling has at most two
                # decimals" (what a service reading a number's shortest spelling checks);
                # validators that divide binary floats may misjudge e.g. 0.07.
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": self.maximum,
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": money_string_pattern(self.maximum)},
            ],
            "description": f"Greater than 0, at most {self.maximum}, at most 2 decimals; "
            'a JSON number or a decimal string ("19.99"); stored with 2 decimals',
        }
