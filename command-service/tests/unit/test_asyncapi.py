"""The committed AsyncAPI document matches the event models (regenerate on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tandem.runtime.command.asyncapi import build_asyncapi, render
from tandem_catalog.app import app as catalog
from tandem_catalog.events import PRODUCT_EVENT_TYPES

pytestmark = pytest.mark.unit
COMMITTED = Path(__file__).resolve().parents[2] / "asyncapi.json"


def test_committed_asyncapi_has_not_drifted() -> None:
    assert COMMITTED.read_bytes() == render(build_asyncapi([catalog])), (
        "command-service/asyncapi.json is stale: run `TANDEM_APPS=tandem_catalog.app:app "
        "uv run python -m tandem.runtime.command.asyncapi command-service/asyncapi.json`"
    )


def test_document_covers_every_event_with_headers_and_key() -> None:
    document = build_asyncapi([catalog], 7, lambda spec: "topic-x")
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
