"""Decoding a Kafka record into an event (or a reason to dead-letter it), and the headers a
dead letter carries back to its origin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tandem.runtime.contract import cloudevent_headers
from tandem.runtime.projector.applier import guard_key
from tandem.runtime.projector.messages import dead_letter_headers, decode
from tandem_catalog.app import app
from tandem_catalog.events import ProductCreated

pytestmark = pytest.mark.unit


def _created(pid: str = "p1", price: str = "19.99") -> ProductCreated:
    return ProductCreated(
        aggregate_id=pid, name="n", description="d", price=Decimal(price), category="books"
    )


class _Record:
    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self.topic, self.partition, self.offset = "tandem.product.events", 3, 42
        self.key, self.value, self.headers = b"p1", value, headers


def test_decode_classifies_poison_and_dead_letter_headers_carry_the_origin() -> None:
    event = _created()
    ok = decode(_Record(event.to_json(), cloudevent_headers(event)), app.registry)
    assert ok.event == event
    assert ok.correlation_id is None
    bad = decode(_Record(b"{nope", []), app.registry)
    assert bad.event is None
    assert bad.reason == "decode_error"
    unknown = decode(_Record(b'{"event_type": "Nope"}', []), app.registry)
    assert unknown.reason == "unknown_event_type"
    headers = dict(dead_letter_headers(bad, "decode_error", "boom", 1))
    assert headers["dlq_original_partition"] == b"3"
    assert headers["dlq_original_offset"] == b"42"


def test_guard_keys_have_no_dots() -> None:
    assert "." not in guard_key("tandem.product.events", 7)
