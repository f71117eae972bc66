"""The committed AsyncAPI document matches the event models (regenerate on purpose)."""

from __future__ import annotations

import pytest
from tandem.runtime.command.asyncapi import DEFAULT_PATH, build_asyncapi, render
from tandem_catalog.events import PRODUCT_EVENT_TYPES

pytestmark = pytest.mark.unit


def test_committed_asyncapi_has_not_drifted() -> None:
    assert DEFAULT_PATH.read_bytes() == render(build_asyncapi()), (
        "command-service/asyncapi.json is stale: run `uv run python -m tandem.runtime.command.asyncapi`"
    )


def test_document_covers_every_event_with_headers_and_key() -> None:
    document = build_asyncapi("topic-x", 7)
    assert document["asyncapi"] == "3.0.0"
    channel = document["channels"]["productEvents"]
    assert channel["address"] == "topic-x"
    assert channel["bindings"]["kafka"]["partitions"] == 7
    messages = document["components"]["messages"]
    assert set(messages) == set(PRODUCT_EVENT_TYPES)
    for name, message in messages.items():
        headers = message["headers"]["properties"]
        assert headers["ce_type"]["const"] == name
        assert {
            "ce_id",
            "ce_source",
            "ce_specversion",
            "ce_time",
            "ce_subject",
            "partitionkey",
        } <= set(headers)
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        schema = document["components"]["schemas"][name]
        assert schema["properties"]["event_type"]["const"] == name
        assert "aggregate_id" in schema["required"]
    price = document["components"]["schemas"]["ProductPriceChanged"]["properties"]["price"]
    assert price["type"] == "string"  # Decimal travels as a string
