from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from tandem.auth import JWTVerifier, Principal, issue_token, require_scopes
from tandem.observability import (
    CorrelationIdMiddleware,
    PrometheusMiddleware,
    correlation_id_var,
    health_router,
)
from tandem.settings import DEV_JWT_SECRET, TandemSettings

pytestmark = pytest.mark.unit

SETTINGS = TandemSettings(environment="test", jwt_secret="s" * 32)


def _app(verifier: JWTVerifier) -> FastAPI:
    app = FastAPI()
    guard = require_scopes(verifier, "products:write")

    @app.post("/cmd")
    async def cmd(principal: Principal = Depends(guard)) -> dict[str, str]:
        return {"sub": principal.subject, "cid": correlation_id_var.get() or ""}

    async def ok() -> None:
        return None

    async def down() -> None:
        raise ConnectionError("no route to mongo")

    app.include_router(health_router({"redis": ok, "mongo": down}, informational={"cache": down}))
    app.add_middleware(PrometheusMiddleware, service="test")
    app.add_middleware(CorrelationIdMiddleware)
    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_missing_wrong_and_sufficient_tokens() -> None:
    async with await _client(_app(JWTVerifier(SETTINGS))) as client:
        r = await client.post("/cmd")
        assert r.status_code == 401
        assert r.json()["detail"]["error"]["code"] == "missing_token"

        read_only = issue_token(SETTINGS, "alice", ["products:read"], 60)
        r = await client.post("/cmd", headers={"Authorization": f"Bearer {read_only}"})
        assert r.status_code == 403
        assert r.json()["detail"]["error"]["code"] == "insufficient_scope"

        forged = jwt.encode(
            {"sub": "eve", "scope": "products:write", "exp": time.time() + 60, "aud": "tandem"},
            "wrong-secret-wrong-secret-wrong-se",
            "HS256",
        )
        r = await client.post("/cmd", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
        assert r.json()["detail"]["error"]["code"] == "invalid_token"

        expired = jwt.encode(
            {"sub": "bob", "scope": "products:write", "exp": time.time() - 60, "aud": "tandem"},
            "s" * 32,
            "HS256",
        )
        r = await client.post("/cmd", headers={"Authorization": f"Bearer {expired}"})
        assert r.json()["detail"]["error"]["code"] == "token_expired"

        token = issue_token(SETTINGS, "bob", ["products:write"], 60)
        r = await client.post(
            "/cmd", headers={"Authorization": f"Bearer {token}", "X-Correlation-ID": "c-42"}
        )
        assert r.status_code == 200
        assert r.json() == {"sub": "bob", "cid": "c-42"}
        assert r.headers["x-correlation-id"] == "c-42"


async def test_auth_disabled_lets_anyone_in_development() -> None:
    settings = TandemSettings(environment="development", auth_disabled=True)
    async with await _client(_app(JWTVerifier(settings))) as client:
        assert (await client.post("/cmd")).status_code == 200


def test_production_refuses_dev_secret_and_disabled_auth() -> None:
    with pytest.raises(ValueError, match="development secret"):
        TandemSettings(environment="production", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValueError, match="auth_disabled"):
        TandemSettings(environment="production", jwt_secret="x" * 32, auth_disabled=True)
    assert TandemSettings(environment="production", jwt_secret="x" * 32).is_production


async def test_health_readiness_names_the_dependency_that_is_down() -> None:
    async with await _client(_app(JWTVerifier(SETTINGS))) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        r = await client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["mongo"].startswith("down: ConnectionError")
        assert body["degraded"]["cache"].startswith("down: ConnectionError")
        metrics = (await client.get("/metrics")).text
        assert (
            'tandem_http_requests_total{method="GET",route="/readyz",service="test",status="503"}'
            in metrics
        )
        assert r.headers["x-correlation-id"]


def test_structured_logs_are_json_with_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog
    from tandem.observability import configure_logging

    configure_logging("svc", "INFO")
    token = correlation_id_var.set("corr-1")
    try:
        structlog.get_logger().info("command_accepted", command="CreateProduct")
    finally:
        correlation_id_var.reset(token)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "command_accepted"
    assert record["correlation_id"] == "corr-1"
    assert record["service"] == "svc"
