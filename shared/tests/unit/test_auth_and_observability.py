from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from tandem.auth import AuthError, JWTVerifier, Principal, issue_token, require_scopes
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


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_dev_secret_and_disabled_auth_are_refused(
    environment: str,
) -> None:
    with pytest.raises(ValueError, match="development secret"):
        TandemSettings(environment=environment, jwt_secret=DEV_JWT_SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auth_disabled"):
        TandemSettings(environment=environment, jwt_secret="x" * 32, auth_disabled=True)  # type: ignore[arg-type]
    ok = TandemSettings(environment=environment, jwt_secret="x" * 32)  # type: ignore[arg-type]
    assert ok.is_production == (environment == "production")
    # Development keeps its conveniences: the published secret and switching auth off.
    dev = TandemSettings(environment="development", jwt_secret=DEV_JWT_SECRET, auth_disabled=True)
    assert dev.auth_disabled


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


def test_console_logs_are_readable_lines_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    import structlog
    from tandem.observability import configure_logging

    try:
        configure_logging("svc", "INFO", "console")
        structlog.get_logger().info("command_accepted", command="CreateProduct")
        logging.getLogger("uvicorn.error").warning("port in use")
        lines = capsys.readouterr().out.strip().splitlines()[-2:]
        assert "command_accepted" in lines[0]
        assert "command=CreateProduct" in lines[0]
        assert "port in use" in lines[1]
        assert not any(line.startswith("{") for line in lines)
    finally:
        configure_logging("svc", "INFO")  # the other tests read JSON


@pytest.mark.parametrize(
    ("environment", "log_format", "expected"),
    [
        ("development", "auto", "console"),
        ("test", "auto", "json"),
        ("production", "auto", "json"),
        ("development", "json", "json"),
        ("production", "console", "console"),
    ],
)
def test_the_log_format_is_console_in_development_and_json_elsewhere(
    environment: str, log_format: str, expected: str
) -> None:
    settings = TandemSettings.model_validate(
        {"environment": environment, "log_format": log_format, "jwt_secret": "x" * 40}
    )
    assert settings.resolved_log_format == expected


def test_a_verified_token_is_not_verified_again_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = JWTVerifier(SETTINGS, leeway_seconds=0)
    token = issue_token(SETTINGS, "alice", ["products:write"], ttl_seconds=60)
    calls: list[str] = []
    real = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("decode")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    assert verifier.authorize(token, "products:write").subject == "alice"
    assert verifier.authorize(token, "products:write").subject == "alice"
    assert len(calls) == 1
    with pytest.raises(Exception) as scope:  # scopes are checked on every hit
        verifier.authorize(token, "admin")
    assert getattr(scope.value, "code", None) == "insufficient_scope"

    # A token one byte off is verified (and refused), not served from the cache.
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(Exception) as bad:
        verifier.authorize(tampered, "products:write")
    assert getattr(bad.value, "code", None) == "invalid_token"

    # Past its expiry the cached entry is dropped and the token verified in full again
    # (PyJWT's own clock then decides; here it still says valid).
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    verifier.authorize(token, "products:write")
    assert len(calls) == 3  # the tampered token, then this one


def test_an_expired_token_is_refused_although_it_was_verified_before() -> None:
    verifier = JWTVerifier(SETTINGS, leeway_seconds=0)
    token = issue_token(SETTINGS, "alice", ["r"], ttl_seconds=1)
    verifier.decode(token)
    time.sleep(2.1)
    with pytest.raises(Exception) as expired:
        verifier.decode(token)
    assert getattr(expired.value, "code", None) == "token_expired"


def test_the_verified_token_cache_is_bounded() -> None:
    verifier = JWTVerifier(SETTINGS, cache_size=3)
    tokens = [issue_token(SETTINGS, f"user{i}", ["r"], ttl_seconds=60) for i in range(5)]
    for token in tokens:
        verifier.decode(token)
    assert list(verifier._verified) == tokens[2:]


def _rsa_pair() -> tuple[bytes, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def _rs256_token(private: bytes, scope: str, audience: str = "tandem") -> str:
    now = int(time.time())
    claims = {"sub": "idp-user", "scope": scope, "aud": audience, "iat": now, "exp": now + 60}
    return jwt.encode(claims, private, algorithm="RS256")


def test_rs256_tokens_are_verified_with_the_public_key_only() -> None:
    """An identity provider signs with its private key; the services hold only the public one."""
    private, public = _rsa_pair()
    settings = TandemSettings(
        environment="production", jwt_algorithm="RS256", jwt_public_key=public
    )
    verifier = JWTVerifier(settings)
    principal = verifier.authorize(_rs256_token(private, "products:write"), "products:write")
    assert principal.subject == "idp-user"
    assert principal.has("products:write")

    other_private, _ = _rsa_pair()
    with pytest.raises(AuthError) as forged:
        verifier.authorize(_rs256_token(other_private, "products:write"), "products:write")
    assert forged.value.code == "invalid_token"
    with pytest.raises(AuthError) as scoped:
        verifier.authorize(_rs256_token(private, "products:read"), "products:write")
    assert scoped.value.status_code == 403


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _hs256_signed_with(key: bytes, claims: dict[str, object]) -> str:
    """An HS256 token whose HMAC key is ``key``, computed by hand (PyJWT refuses PEM keys)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signing_input = header + b"." + payload
    signature = _b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def test_rs256_algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused() -> None:
    """The classic attack on RS256: the public key is public, so an attacker signs an HS256
    token with it as the HMAC secret. A verifier that lets the token's header pick the
    algorithm (say ``algorithms=["RS256", "HS256"]``) with one key would accept it."""
    private, public = _rsa_pair()
    verifier = JWTVerifier(
        TandemSettings(environment="production", jwt_algorithm="RS256", jwt_public_key=public)
    )
    now = int(time.time())
    claims = {"sub": "eve", "aud": "tandem", "scope": "products:write", "iat": now, "exp": now + 60}
    forged = _hs256_signed_with(public.encode(), claims)
    # The forgery is well made: same claims as a genuine token, a correct HMAC under the PEM.
    signing_input, _, signature = forged.rpartition(".")
    expected = _b64url(hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest())
    assert signature.encode() == expected
    assert jwt.get_unverified_header(forged)["alg"] == "HS256"
    assert jwt.decode(forged, options={"verify_signature": False}) == claims
    assert verifier.authorize(_rs256_token(private, "products:write"), "products:write")

    with pytest.raises(AuthError) as confused:
        verifier.authorize(forged, "products:write")
    assert confused.value.code == "invalid_token"
    assert confused.value.status_code == 401


def test_rs256_needs_a_public_key() -> None:
    with pytest.raises(ValueError, match="PUBLIC_KEY"):
        TandemSettings(environment="production", jwt_algorithm="RS256")
