"""Regressions for what schemathesis found: the published schema is the accepted set, other
methods are 405 whatever their headers, and the live page may call us (CORS)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

BODY = {"name": "Desk", "price": "10.00", "category": "furniture"}
PAGE_ORIGIN = "http://127.0.0.1:8002"


async def _create(running: Any) -> str:
    response = await running.client.post("/api/products", json=BODY, headers=running.headers())
    assert response.status_code == 201
    return str(response.json()["id"])


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
async def test_unsupported_method_with_an_idempotency_key_is_405(running: Any, method: str) -> None:
    for body in (b'{"a": 1}', b'{"b": 2}'):  # a second body would be "reused" if remembered
        response = await running.client.request(
            method,
            "/api/products",
            content=body,
            headers=running.headers(**{"Idempotency-Key": "same-key"}),
        )
        assert response.status_code == 405, response.text


async def test_the_same_key_still_replays_a_post_after_a_trace(running: Any) -> None:
    headers = running.headers(**{"Idempotency-Key": "k-trace"})
    trace = await running.client.request("TRACE", "/api/products", headers=headers)
    assert trace.status_code == 405
    first = await running.client.post("/api/products", json=BODY, headers=headers)
    again = await running.client.post("/api/products", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "name": "x" * 200},
        {**BODY, "name": "  " + "x" * 200 + "\u3000"},  # trimmed to 200
        {**BODY, "price": 1000000000},
        {**BODY, "price": 0.01},
        {**BODY, "price": 0.35},
        {**BODY, "price": "+0001.500"},
        {**BODY, "price": "1000000000.00"},
    ],
)
async def test_schema_edge_values_are_accepted(running: Any, body: dict[str, Any]) -> None:
    response = await running.client.post("/api/products", json=body, headers=running.headers())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({**BODY, "price": "1e2"}, ["body", "price"]),
        ({**BODY, "price": " 5"}, ["body", "price"]),
        ({**BODY, "price": "1_000"}, ["body", "price"]),
        ({**BODY, "correlation_id": "mine"}, ["body", "correlation_id"]),
    ],
)
async def test_outside_the_schema_is_a_field_422(
    running: Any, body: dict[str, Any], location: list[str]
) -> None:
    response = await running.client.post("/api/products", json=body, headers=running.headers())
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [location]


async def test_expected_version_is_a_json_integer_only(running: Any) -> None:
    product_id = await _create(running)
    for version in ("1", True, 1.5):
        response = await running.client.post(
            f"/api/products/{product_id}/price",
            json={"price": 12, "expected_version": version},
            headers=running.headers(),
        )
        assert response.status_code == 422, version
    # 1.0 is an integer in JSON Schema (draft 6 on), so the schema admits it and so do we.
    whole = await running.client.post(
        f"/api/products/{product_id}/price",
        json={"price": 12, "expected_version": 1.0},
        headers=running.headers(),
    )
    assert whole.status_code == 200
    assert whole.json()["version"] == 2


@pytest.mark.parametrize("header", ['"1', '1"', "W/1x", "\u0661"])
async def test_if_match_outside_its_pattern_is_422(running: Any, header: str) -> None:
    product_id = await _create(running)
    response = await running.client.post(
        f"/api/products/{product_id}/price",
        json={"price": 12},
        headers=running.headers(**{"If-Match": header.encode()}),
    )
    assert response.status_code == 422


async def test_openapi_spells_out_what_is_accepted(running: Any) -> None:
    document = (await running.client.get("/openapi.json")).json()
    price_op = document["paths"]["/api/products/{product_id}/price"]["post"]
    parameters = {p["name"]: p["schema"] for p in price_op["parameters"]}
    assert "pattern" in parameters["If-Match"]
    assert "pattern" in parameters["Idempotency-Key"]
    assert parameters["product_id"]["maxLength"] == 64
    body = price_op["requestBody"]["content"]["application/json"]["schema"]
    number, string = body["properties"]["price"]["anyOf"]
    assert number == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1000000000,
        "multipleOf": 0.01,
    }
    assert string["type"] == "string"
    assert "pattern" in string
    create = document["paths"]["/api/products"]["post"]
    name = create["requestBody"]["content"]["application/json"]["schema"]["properties"]["name"]
    assert name["minLength"] == 1
    assert "pattern" in name
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if operation.get("tags") == ["products"]:
                assert {"409", "422"} <= set(operation["responses"])


async def test_cors_preflight_from_the_live_page(app_factory: Any) -> None:
    async with app_factory(environment="development") as running:
        response = await running.client.options(
            "/api/products",
            headers={
                "Origin": PAGE_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": (
                    "authorization, content-type, idempotency-key, if-match"
                ),
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == PAGE_ORIGIN
        allowed = response.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key", "if-match"):
            assert header in allowed
        assert "POST" in response.headers["access-control-allow-methods"]

        created = await running.client.post(
            "/api/products", json=BODY, headers=running.headers(Origin=PAGE_ORIGIN)
        )
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == PAGE_ORIGIN
        exposed = created.headers["access-control-expose-headers"].lower()
        assert {"location", "etag", "x-correlation-id"} <= set(exposed.replace(" ", "").split(","))

        stranger = await running.client.options(
            "/api/products",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in stranger.headers


async def test_no_cors_outside_development_unless_configured(app_factory: Any) -> None:
    async with app_factory(environment="test") as running:
        response = await running.client.options(
            "/api/products",
            headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in response.headers
    async with app_factory(environment="test", cors_origins=["https://shop.example"]) as running:
        response = await running.client.options(
            "/api/products",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
        )
        assert response.headers["access-control-allow-origin"] == "https://shop.example"


@pytest.mark.parametrize("product_id", ["\U000cb3da\U000484ca", "é", "a b", "x/y"])
async def test_a_product_id_outside_the_pattern_is_a_422_not_a_header_error(
    running: Any, product_id: str
) -> None:
    """schemathesis, 2026-12-01: a non-Latin-1 product_id reached the Location header before
    validation and was a 500 (the header cannot be encoded)."""
    response = await running.client.post(
        "/api/products", json={**BODY, "product_id": product_id}, headers=running.headers()
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "product_id"]
    assert "location" not in response.headers


async def test_a_valid_client_product_id_is_the_location(running: Any) -> None:
    response = await running.client.post(
        "/api/products", json={**BODY, "product_id": "sku-42:v1"}, headers=running.headers()
    )
    assert response.status_code == 201
    assert response.headers["location"] == "/api/products/sku-42:v1"
