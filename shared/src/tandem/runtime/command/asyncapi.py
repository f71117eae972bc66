"""The AsyncAPI 3 document of every served app's topics, generated from the declared events.

Served at ``/asyncapi.json``: one channel per aggregate type (its topic), one message per event
type. A copy can be committed and compared with a fresh one by a test, so a change to an event
class without regenerating (``python -m tandem.runtime.command.asyncapi PATH``, with
``TANDEM_APPS`` set) fails the build instead of drifting silently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from tandem.app import AggregateSpec, App, load_apps
from tandem.events import DomainEvent
from tandem.runtime.contract import CLOUDEVENTS_SOURCE

KAFKA_BINDING_VERSION = "0.5.0"


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
            "ce_subject": text("aggregate id"),
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


def _channel_name(spec: AggregateSpec) -> str:
    name = spec.aggregate_type
    return f"{name[:1].lower()}{name[1:]}Events"


def _message(event: type[DomainEvent]) -> dict[str, Any]:
    return {
        "name": event.event_type,
        "title": event.event_type,
        "summary": _payload_schema(event)["description"],
        "contentType": "application/json",
        "headers": _headers_schema(event),
        "payload": {"$ref": f"#/components/schemas/{event.event_type}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "aggregate id"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def build_asyncapi(
    apps: Sequence[App],
    partitions: int = 12,
    topic_of: Callable[[AggregateSpec], str] | None = None,
) -> dict[str, Any]:
    """``topic_of`` names an aggregate type's topic (default: the declared one)."""
    topic = topic_of or (lambda spec: spec.topic)
    specs = [spec for app in apps for spec in app.aggregates]
    events = {event.event_type: event for spec in specs for event in spec.events}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in specs:
        name, names = _channel_name(spec), spec.event_types
        channels[name] = {
            "address": topic(spec),
            "title": f"{spec.aggregate_type} events",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {
                "kafka": {
                    "topic": topic(spec),
                    "partitions": partitions,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        operations[f"publish{spec.aggregate_type}Events"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{n}"} for n in names],
        }
    titles = ", ".join(app.title or app.name for app in apps)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"Tandem events: {titles}",
            "version": "1.0.0",
            "description": (
                "Facts the command-service records. One topic per aggregate type, one message "
                "per event, in version order per aggregate; key = aggregate id, so one "
                "aggregate's events stay in one partition. Delivery is at-least-once: "
                "consumers skip versions they have."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {n: _message(e) for n, e in events.items()},
            "schemas": {n: _payload_schema(e) for n, e in events.items()},
        },
    }


def render(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> None:
    """Write (or print) the document of the apps in ``TANDEM_APPS``; no other setting is read,
    so the committed copy does not depend on the machine that made it."""
    args = sys.argv[1:] if argv is None else argv
    specs = [s.strip() for s in os.environ.get("TANDEM_APPS", "").split(",") if s.strip()]
    document = render(build_asyncapi(load_apps(specs)))
    if not args:
        sys.stdout.buffer.write(document)
        return
    Path(args[0]).write_bytes(document)
    print(f"wrote {args[0]}")


if __name__ == "__main__":
    main()
