"""OpenAPI fragments for factory-made routes.

The factory documents a route's body and query parameters from the message's own pydantic
schema (it validates them itself, so FastAPI never sees the model). Pydantic puts nested models
under a local ``$defs`` with ``#/$defs/Name`` references, which do not resolve once the fragment
sits inside an OpenAPI document (``#`` is then the document root). :func:`self_contained`
inlines every such reference so the fragment stands on its own wherever the route is mounted
(an app, a router, a prefixed router). A recursive model is expanded once; the recursive
occurrence becomes an open schema of the same JSON type, which still resolves everywhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_LOCAL_DEFS = "#/$defs/"


def self_contained(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``#/$defs/...`` reference replaced by the definition it names."""
    definitions: dict[str, Any] = schema.get("$defs", {})

    def recursive_stub(name: str) -> dict[str, Any]:
        definition = definitions.get(name, {})
        stub: dict[str, Any] = {"description": f"{name} (recursive; nested levels not described)"}
        if "type" in definition:
            stub["type"] = definition["type"]
        return stub

    def resolve(node: Any, expanding: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, expanding) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith(_LOCAL_DEFS)):
            return {key: resolve(value, expanding) for key, value in node.items() if key != "$defs"}
        name = ref.removeprefix(_LOCAL_DEFS).replace("~1", "/").replace("~0", "~")
        if name in expanding or name not in definitions:
            target = recursive_stub(name)
        else:
            target = resolve(definitions[name], expanding | {name})
        siblings = {key: resolve(value, expanding) for key, value in node.items() if key != "$ref"}
        if not siblings:
            return target
        if set(siblings).isdisjoint(target):
            return {**target, **siblings}
        return {"allOf": [target], **siblings}

    resolved: dict[str, Any] = resolve(schema, frozenset())
    return resolved


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's validation JSON schema, with no reference left to resolve."""
    return self_contained(model.model_json_schema())


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": model_schema(model)}}}


def query_parameters(model: type[BaseModel], path: str) -> list[dict[str, Any]]:
    """One OpenAPI parameter per field (``in: path`` when the path template names it)."""
    schema = model_schema(model)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "path" if "{" + name + "}" in path else "query",
            "required": name in required or "{" + name + "}" in path,
            "schema": prop,
        }
        for name, prop in properties.items()
        if name != "correlation_id"
    ]
