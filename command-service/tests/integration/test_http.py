"""The HTTP contract: statuses, error bodies, auth, limits, documents, and no 5xx on bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tandem.auth import issue_token

pytestmark = pytest.mark.integration

BODY = {"name": "Desk", "price": "10.00", "category": "furniture"}


async def _create(running: Any) -> str:
    response = await running.client.post("/api/products", json=BODY, headers=running.headers())
    assert response.status_code == 201
    return str(response.json()["id"])


async def test_unknown_product_is_404(running: Any) -> None:
    response = await running.client.post(
        "/api/products/nope/price", json={"price": 1}, headers=running.headers()
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_validation_errors_name_the_fields(running: Any) -> None:
    response = await running.client.post(
        "/api/products", json={"price": "abc"}, headers=running.headers()
    )
    assert response.status_code == 422
    locations = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert {("body", "price"), ("body", "name"), ("body", "category")} <= locations


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**BODY, "price": "0"}, "invalid_price"),
        ({**BODY, "price": "1.234"}, "invalid_price_precision"),
        ({**BODY, "name": ""}, "invalid_name"),
        ({**BODY, "name": "x" * 201}, "invalid_name"),
    ],
)
async def test_broken_rules_are_422_with_a_code(running: Any, body: Any, code: str) -> None:
    response = await running.client.post("/api/products", json=body, headers=running.headers())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


async def test_client_chosen_id_and_duplicate_create(running: Any) -> None:
    body = {**BODY, "product_id": "sku-123"}
    first = await running.client.post("/api/products", json=body, headers=running.headers())
    assert first.json() == {"id": "sku-123", "version": 1}
    second = await running.client.post("/api/products", json=body, headers=running.headers())
    assert second.status_code == 409
    assert second.json()["error"]["details"]["current_version"] == 1


async def test_auth(running: Any) -> None:
    no_token = await running.client.post("/api/products", json=BODY)
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "missing_token"
    bad = await running.client.post(
        "/api/products", json=BODY, headers={"Authorization": "Bearer nonsense"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_token"
    reader = issue_token(running.settings, "reader", ["products:read"], 60)
    forbidden = await running.client.post(
        "/api/products", json=BODY, headers={"Authorization": f"Bearer {reader}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "insufficient_scope"
    product_id = await _create(running)
    for method, path in [
        ("PATCH", f"/api/products/{product_id}"),
        ("POST", f"/api/products/{product_id}/price"),
        ("POST", f"/api/products/{product_id}/discontinue"),
    ]:
        response = await running.client.request(method, path, json={"name": "x", "price": 1})
        assert response.status_code == 401, path
    assert await running.store.current_version(product_id) == 1


async def test_auth_can_be_disabled_in_development_only(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError
    from tandem.runtime.command.settings import CommandServiceSettings

    monkeypatch.delenv("TANDEM_JWT_SECRET", raising=False)  # the default: the published one
    for environment in ("production", "test"):
        with pytest.raises(ValidationError, match="auth_disabled"):
            CommandServiceSettings(environment=environment, auth_disabled=True, jwt_secret="s" * 40)
        with pytest.raises(ValidationError, match="development secret"):
            CommandServiceSettings(environment=environment)
    async with app_factory(environment="development", auth_disabled=True) as running:
        response = await running.client.post("/api/products", json=BODY)
        assert response.status_code == 201


async def test_body_size_limit_is_413(app_factory: Any) -> None:
    async with app_factory(max_body_bytes=1024) as running:
        big = {**BODY, "description": "x" * 2000}
        response = await running.client.post("/api/products", json=big, headers=running.headers())
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        async def chunks() -> Any:  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b" " * 200

        streamed = await running.client.post(
            "/api/products", content=chunks(), headers=running.headers()
        )
        assert streamed.status_code == 413


async def test_openapi_documents_every_status(running: Any) -> None:
    spec = (await running.client.get("/openapi.json")).json()
    create = spec["paths"]["/api/products"]["post"]
    assert {"201", "401", "403", "409", "413", "422", "503"} <= set(create["responses"])
    assert "Location" in create["responses"]["201"]["headers"]
    for path, method in [
        ("/api/products/{product_id}", "patch"),
        ("/api/products/{product_id}/price", "post"),
        ("/api/products/{product_id}/discontinue", "post"),
    ]:
        operation = spec["paths"][path][method]
        assert {"200", "401", "403", "404", "409", "413", "422", "503"} <= set(
            operation["responses"]
        )
        names = {p["name"] for p in operation["parameters"]}
        assert {"If-Match", "Idempotency-Key", "product_id"} <= names
    assert (await running.client.get("/docs")).status_code == 200


async def test_asyncapi_is_served(running: Any) -> None:
    document = (await running.client.get("/asyncapi.json")).json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["productEvents"]["address"] == running.topic


async def test_readyz_healthz_and_metrics(running: Any) -> None:
    assert (await running.client.get("/healthz")).status_code == 200
    ready = await running.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
    await _create(running)
    await running.client.post(
        "/api/products", json={**BODY, "price": "0"}, headers=running.headers()
    )
    await running.writer.relay.run_once()
    text = (await running.client.get("/metrics")).text
    assert (
        'tandem_messages_total{error_code="",kind="command",message_type="CreateProduct",outcome="success"}'
        in text
    )
    assert 'error_code="invalid_price"' in text
    assert "tandem_message_duration_seconds_bucket" in text
    assert "tandem_outbox_backlog" in text
    assert "tandem_publish_errors_total" in text


MALFORMED_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b"\xff\xfe",
    b'{"name": 1, "price": {}, "category": []}',
    b'{"name": "x", "price": "NaN", "category": "c"}',
    b'{"name": "x", "price": "Infinity", "category": "c"}',
    b'{"name": "x", "price": 1e400, "category": "c"}',
    b'{"name": "x", "price": "1e999999999", "category": "c"}',
    b'{"name": "x", "price": "-0", "category": "c"}',
    b'{"name": "x", "price": 99999999999999999999999999, "category": "c"}',
    b'{"name": "x", "price": true, "category": "c"}',
    b'{"name": "\\u0000", "price": 1, "category": "c"}',
    b'{"name": "x", "price": 1, "category": "c", "unknown": 1}',
    b'{"name": "x", "price": 1, "category": "c", "product_id": "../../etc"}',
    b'{"name": "x", "price": 1, "category": "c", "product_id": "$where"}',
    b'{"name": "x", "price": 1, "category": "c", "product_id": {"$gt": ""}}',
    b'{"name": "x", "price": 1, "category": "c", "expected_version": -1}',
    b'{"name": "x", "price": 1, "category": "c", "correlation_id": {"a": 1}}',
    b'{"name": {"$ne": null}, "price": 1, "category": "c"}',
    json.dumps({"name": "x" * 5000, "price": 1, "category": "c"}).encode(),
    b'{"expected_version": 99999999999999999999, "name": "x"}',
    b'{"price": "12.345"}',
    b'{"reason": 5}',
]
MALFORMED_HEADERS: list[dict[str, str | bytes]] = [
    {"If-Match": "abc"},
    {"If-Match": '"-1"'},
    {"If-Match": "*"},
    {"If-Match": "9" * 40},
    {"Idempotency-Key": ""},
    {"Idempotency-Key": "é".encode("latin-1")},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/json; charset=latin-1"},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic Zm9vOmJhcg=="},
    {"Authorization": "Bearer a.b.c"},
    {"X-Correlation-ID": "x" * 500},
]
MALFORMED_IDS = ["%00", "a" * 200, "..", "%24where", "id%20with%20space", "%E2%98%83", "x;y"]


async def test_malformed_input_never_gives_a_5xx(running: Any) -> None:
    product_id = await _create(running)
    paths = [
        ("POST", "/api/products"),
        ("PATCH", f"/api/products/{product_id}"),
        ("POST", f"/api/products/{product_id}/price"),
        ("POST", f"/api/products/{product_id}/discontinue"),
    ]
    failures = []
    for method, path in paths:
        for body in MALFORMED_BODIES:
            response = await running.client.request(
                method,
                path,
                content=body,
                headers=running.headers(**{"content-type": "application/json"}),
            )
            if response.status_code >= 500:
                failures.append((method, path, body[:60], response.status_code, response.text))
        for extra in MALFORMED_HEADERS:
            headers = {**running.headers(), **extra}
            response = await running.client.request(method, path, json=BODY, headers=headers)
            if response.status_code >= 500:
                failures.append((method, path, extra, response.status_code, response.text))
    for bad_id in MALFORMED_IDS:
        for suffix, method in [("", "PATCH"), ("/price", "POST"), ("/discontinue", "POST")]:
            response = await running.client.request(
                method,
                f"/api/products/{bad_id}{suffix}",
                json={"name": "x", "price": 1},
                headers=running.headers(),
            )
            if response.status_code >= 500:
                failures.append((method, bad_id, suffix, response.status_code, response.text))
    assert failures == []
