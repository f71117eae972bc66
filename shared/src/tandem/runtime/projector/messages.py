"""Kafka records in and out: CloudEvents binary headers, decoding, dead-letter headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tandem.errors import EventSchemaError, UnknownEventType
from tandem.events import DomainEvent, EventRegistry

Headers = list[tuple[str, bytes]]
DLQ_HEADER_PREFIX = "dlq_"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One consumed record. ``event`` is None when it could not be decoded (``error`` says why)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    event: DomainEvent | None = None
    error: str | None = None
    reason: str | None = None

    @property
    def correlation_id(self) -> str | None:
        if self.event is not None and self.event.correlation_id:
            return self.event.correlation_id
        raw = header(self.headers, "ce_correlationid")
        return raw.decode() if raw else None


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def decode(record: Any, registry: EventRegistry) -> Delivery:
    """Turn an aiokafka ``ConsumerRecord`` into a :class:`Delivery`; never raises."""
    headers: Headers = [(k, bytes(v or b"")) for k, v in (record.headers or ())]
    base = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key,
        "value": record.value,
        "headers": headers,
    }
    if record.value is None:
        return Delivery(**base, error="empty value", reason="decode_error")
    try:
        event = registry.deserialize_json(record.value)
    except UnknownEventType as exc:
        return Delivery(**base, error=str(exc), reason="unknown_event_type")
    except EventSchemaError as exc:
        return Delivery(**base, error=str(exc), reason="schema_error")
    except (
        ValueError,
        ValidationError,
        TypeError,
    ) as exc:  # orjson.JSONDecodeError is a ValueError
        return Delivery(**base, error=f"{type(exc).__name__}: {exc}"[:500], reason="decode_error")
    return Delivery(**base, event=event)


def dead_letter_headers(delivery: Delivery, reason: str, error: str, attempts: int) -> Headers:
    original = [(k, v) for k, v in delivery.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    return [
        *original,
        ("dlq_reason", reason.encode()),
        ("dlq_error", error[:1000].encode()),
        ("dlq_original_topic", delivery.topic.encode()),
        ("dlq_original_partition", str(delivery.partition).encode()),
        ("dlq_original_offset", str(delivery.offset).encode()),
        ("dlq_attempts", str(attempts).encode()),
        ("dlq_at", datetime.now(UTC).isoformat().encode()),
    ]


def without_dlq_headers(headers: Sequence[tuple[str, bytes]]) -> Headers:
    return [(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)]
