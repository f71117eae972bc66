"""JWT bearer authentication with scopes, shared by every Tandem HTTP and WebSocket entry point.

Tokens carry scopes in the standard ``scope`` claim (space separated) or a ``scopes`` list.
HS256 uses ``TANDEM_JWT_SECRET``; RS256 verifies with ``TANDEM_JWT_PUBLIC_KEY`` only, so a
service that merely reads never holds a key able to mint tokens. ``auth_disabled`` exists for
local development and is refused in production by :class:`tandem.settings.TandemSettings`.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import HTTPException, Request, status

from tandem.settings import TandemSettings


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do."""

    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def has(self, *scopes: str) -> bool:
        return set(scopes) <= self.scopes


ANONYMOUS_DEV = Principal("anonymous-dev", frozenset({"*"}))


class AuthError(Exception):
    """A token is missing, invalid, or lacks a scope. ``status_code`` is 401 or 403."""

    def __init__(self, code: str, message: str, status_code: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": {}}


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scopes", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset()


class JWTVerifier:
    """Decodes and checks tokens; built once per service in its composition root."""

    def __init__(
        self, settings: TandemSettings, leeway_seconds: float = 5.0, cache_size: int = 4096
    ) -> None:
        self.disabled = settings.auth_disabled
        self.algorithm = settings.jwt_algorithm
        self.key: str = (
            settings.jwt_public_key or ""
            if settings.jwt_algorithm == "RS256"
            else settings.jwt_secret.get_secret_value()
        )
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.leeway = leeway_seconds
        self.cache_size = cache_size
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def decode(self, token: str) -> Principal:
        """The token's principal; a token verified before is not verified again until it
        expires.

        Why a cache: clients send the same token with every request, and PyJWT's checks cost
        11 % of the command service's CPU per command (py-spy). The key is the whole token,
        signature included, so only the exact bytes that passed are trusted; the expiry is
        checked on every hit, and the cache is bounded (least recently used goes first).
        """
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires = hit
            if time.time() <= expires + self.leeway:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal = self._verify(token)
        if self.cache_size > 0:
            self._verified[token] = (principal, float(principal.claims["exp"]))
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "the token has expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", f"invalid token: {exc}") from None
        return Principal(str(claims["sub"]), _scopes(claims), claims)

    def authorize(self, token: str | None, *scopes: str) -> Principal:
        """Principal for ``token`` if it grants every scope; raises :class:`AuthError`."""
        if self.disabled:
            return ANONYMOUS_DEV
        if not token:
            raise AuthError("missing_token", "a bearer token is required")
        principal = self.decode(token)
        if not principal.has(*scopes):
            missing = sorted(set(scopes) - principal.scopes)
            raise AuthError(
                "insufficient_scope", f"the token lacks scope(s): {', '.join(missing)}", 403
            )
        return principal


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_scopes(
    verifier: JWTVerifier, *scopes: str
) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency: the caller's :class:`Principal`, or 401/403 with an error body."""

    async def dependency(request: Request) -> Principal:
        try:
            principal = verifier.authorize(bearer_token(request), *scopes)
        except AuthError as exc:
            headers = {"WWW-Authenticate": f'Bearer scope="{" ".join(scopes)}"'}
            if exc.status_code == status.HTTP_403_FORBIDDEN:
                headers["WWW-Authenticate"] += ', error="insufficient_scope"'
            raise HTTPException(exc.status_code, {"error": exc.to_dict()}, headers) from None
        request.state.principal = principal
        return principal

    return dependency


def issue_token(
    settings: TandemSettings, subject: str, scopes: list[str] | tuple[str, ...], ttl_seconds: int
) -> str:
    """Mint an HS256 token: for development, tests and short-lived WebSocket tickets."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("issue_token signs with the shared HS256 secret only")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


__all__ = [
    "AuthError",
    "JWTVerifier",
    "Principal",
    "bearer_token",
    "issue_token",
    "require_scopes",
]
