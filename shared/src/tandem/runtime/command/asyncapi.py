"""The AsyncAPI 3 document of the product topic, generated from the event models.

Served at ``/asyncapi.json``; the copy committed as ``command-service/asyncapi.json`` is
compared with a fresh one by a test, so a change to an event class without regenerating
(``uv run python -m command_service.asyncapi``) fails the build instead of drifting silently.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from tandem.events import DomainEvent
from tandem_catalog.contract import CLOUDEVENTS_SOURCE, PRODUCT_TOPIC
from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)

EVENTS: tuple[type[DomainEvent], ...] = (
    ProductCreated,
    ProductDetailsUpdated,
    ProductPriceChanged,
    ProductDiscontinued,
)
KAFKA_BINDING_VERSION = "0.5.0"
DEFAULT_PATH = Path.cwd() / "command-service" / "asyncapi.json"
_CHANNEL = "productEvents"


def _payload_schema(event: type[DomainEvent]) -> dict[str, Any]:
    # Serialization mode: the wire form (Decimal and datetime as strings), as to_dict() writes.
    schema = event.model_json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    schema.pop("$defs", None)
    properties = schema.setdefault("properties", {})
    properties["event_type"] = {"type": "string", "const": event.event_type}
    properties["schema_version"] = {"type": "integer", "const": event.schema_version}
    schema["required"] = sorted({*schema.get("required", ()), "event_type", "schema_version"})
    schema["description"] = (event.__doc__ or event.event_type).strip().splitlines()[0]
    return schema


def _headers_schema(event: type[DomainEvent]) -> dict[str, Any]:
    def text(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary-mode headers",
        "properties": {
            "ce_id": text("event id (event_id of the payload)"),
            "ce_type": text("event type", const=event.event_type),
            "ce_source": text("producer", const=CLOUDEVENTS_SOURCE),
            "ce_specversion": text("CloudEvents version", const="1.0"),
            "ce_time": text("when the event occurred", format="date-time"),
            "ce_subject": text("aggregate id (the product id)"),
            "content-type": text("media type of the value", const="application/json"),
            "partitionkey": text("aggregate id; also the Kafka key"),
            "ce_correlationid": text("correlation id of the request that caused the event"),
        },
        "required": [
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_specversion",
            "ce_time",
            "ce_subject",
            "content-type",
            "partitionkey",
        ],
    }


def build_asyncapi(topic: str = PRODUCT_TOPIC, partitions: int = 12) -> dict[str, Any]:
    names = [event.event_type for event in EVENTS]
    messages = {
        event.event_type: {
            "name": event.event_type,
            "title": event.event_type,
            "summary": _payload_schema(event)["description"],
            "contentType": "application/json",
            "headers": _headers_schema(event),
            "payload": {"$ref": f"#/components/schemas/{event.event_type}"},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "aggregate id (product id)"},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        for event in EVENTS
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Tandem product events",
            "version": "1.0.0",
            "description": (
                "Facts the command-service records about products. One message per event, in "
                "version order per product; key = product id, so one product's events stay in "
                "one partition. Delivery is at-least-once: consumers skip versions they have."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            _CHANNEL: {
                "address": topic,
                "title": "Product events",
                "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
                "bindings": {
                    "kafka": {
                        "topic": topic,
                        "partitions": partitions,
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
        },
        "operations": {
            "publishProductEvents": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{_CHANNEL}"},
                "messages": [{"$ref": f"#/channels/{_CHANNEL}/messages/{n}"} for n in names],
            }
        },
        "components": {
            "messages": messages,
            "schemas": {event.event_type: _payload_schema(event) for event in EVENTS},
        },
    }


def render(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.write_bytes(render(build_asyncapi()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
