"""The OpenAPI document of factory-made routes must be self-contained: every ``$ref`` points at
an existing component, nested models included, so schemathesis and client generators accept it."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import jsonschema
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from tandem import Command, Query
from tandem.api import CQRSEndpointFactory

pytestmark = pytest.mark.unit


class Address(BaseModel):
    street: str
    city: str = Field(min_length=1)


class Dimensions(BaseModel):
    width: Decimal = Field(gt=0)
    height: Decimal = Field(gt=0)


class Tag(BaseModel):
    name: str
    children: list[Tag] = []  # recursive: cannot be inlined


class Sort(StrEnum):
    NAME = "name"
    PRICE = "price"


class RegisterWarehouse(Command[str]):
    name: str
    address: Address
    shelves: list[Dimensions] = []
    backup: Address | None = None


class TagProduct(Command[str]):
    id: str
    tag: Tag


class ListProducts(Query[list[dict[str, Any]]]):
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=100)
    min_price: Decimal | None = Field(default=None, ge=0)
    sort: Sort = Sort.NAME
    category: str | None = Field(default=None, max_length=40)


class ProductOut(BaseModel):
    id: str
    address: Address


def build_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1")
    CQRSEndpointFactory.create_command_endpoint(
        router, "/warehouses", RegisterWarehouse, status_code=201
    )
    CQRSEndpointFactory.create_command_endpoint(router, "/products/{id}/tags", TagProduct)
    CQRSEndpointFactory.create_query_endpoint(
        router, "/products", ListProducts, response_model=list[ProductOut]
    )
    app.include_router(router)
    CQRSEndpointFactory.create_command_endpoint(app, "/direct", RegisterWarehouse)
    return app


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        refs = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return refs + [ref for value in node.values() for ref in _walk_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _walk_refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local $ref {ref!r}"
    node: Any = document
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref!r} walks into a non-object"
        assert part in node, f"{ref!r} does not resolve (missing {part!r})"
        node = node[part]
    return node


def test_every_ref_resolves_to_a_component() -> None:
    document = build_app().openapi()
    refs = _walk_refs(document)
    assert refs, "expected FastAPI's own components to be referenced"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        _resolve(document, ref)
    assert '"$defs"' not in repr(document).replace("'", '"')


def test_nested_command_body_schema_validates_real_payloads() -> None:
    document = build_app().openapi()
    operation = document["paths"]["/v1/warehouses"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    # Resolve against the whole document, as a schema-driven client or fuzzer does.
    root = {**schema, "components": document["components"]}
    validator = jsonschema.Draft202012Validator(root)
    good = {
        "name": "north",
        "address": {"street": "1 Main", "city": "Oslo"},
        "shelves": [{"width": 1, "height": "2.5"}],
    }
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({"name": "x", "address": {"street": "s", "city": ""}}))
    assert list(validator.iter_errors({"name": "x", "address": {"street": "s"}}))


def test_recursive_nested_model_is_documented_without_dangling_refs() -> None:
    document = build_app().openapi()
    schema = document["paths"]["/v1/products/{id}/tags"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    for ref in _walk_refs(schema):
        _resolve(document, ref)
    root = {**schema, "components": document["components"]}
    validator = jsonschema.Draft202012Validator(root)
    tag = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    assert list(validator.iter_errors({"id": "p1", "tag": tag})) == []
    assert list(validator.iter_errors({"id": "p1", "tag": {"children": []}}))


def test_bounded_query_parameters_keep_bounds_and_resolve() -> None:
    document = build_app().openapi()
    params = {p["name"]: p for p in document["paths"]["/v1/products"]["get"]["parameters"]}
    assert params["page"]["schema"]["minimum"] == 1
    assert params["page_size"]["schema"]["maximum"] == 100
    assert params["page"]["in"] == "query"
    for param in params.values():
        for ref in _walk_refs(param["schema"]):
            _resolve(document, ref)
    sort = params["sort"]["schema"]
    if "$ref" in sort:
        sort = _resolve(document, sort["$ref"])
    assert sort["enum"] == ["name", "price"]
    response = document["paths"]["/v1/products"]["get"]["responses"]["200"]
    for ref in _walk_refs(response):
        _resolve(document, ref)


def test_schemathesis_loads_every_operation() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(build_app().openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:
        # Building a strategy dereferences every schema of the operation.
        operation.as_strategy()
