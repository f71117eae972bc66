"""Authentication of the live endpoints ``/ws/{read model}``: a JWT with the read model's
scope in the first message, or a short-lived single-use ticket in the URL.

The endpoint itself is the library's (:func:`tandem.api.create_websocket_endpoint`) over the
Redis change feed (:mod:`tandem.runtime.query.fanout`); its protocol and close codes are
documented there and in ``docs/query-service.md``.
"""

from __future__ import annotations

import time
from typing import Any

from tandem.auth import AuthError, JWTVerifier, Principal

TICKET_SCOPE = "ws:ticket"


class WsAuthenticator:
    """JWT with the read model's scope (first message) or a short-lived ticket (URL).

    A ticket is a JWT carrying ``ws:ticket`` as well, at most ``ticket_ttl`` seconds long and
    accepted once per process, so a URL that leaks into a log is worthless within seconds.
    """

    def __init__(self, verifier: JWTVerifier, ticket_ttl: int, scope: str) -> None:
        self.verifier = verifier
        self.ticket_ttl = ticket_ttl
        self.scope = scope
        self._used: dict[str, float] = {}

    def for_scope(self, scope: str) -> WsAuthenticator:
        """Another read model's authenticator sharing this one's spent tickets."""
        other = WsAuthenticator(self.verifier, self.ticket_ttl, scope)
        other._used = self._used
        return other

    def token(self, token: Any) -> Principal:
        return self.verifier.authorize(token if isinstance(token, str) else None, self.scope)

    def ticket(self, ticket: str) -> Principal:
        principal = self.verifier.authorize(ticket, self.scope, TICKET_SCOPE)
        if self.verifier.disabled:
            return principal
        claims = principal.claims
        lifetime = int(claims.get("exp", 0)) - int(claims.get("iat", 0))
        if lifetime > self.ticket_ttl:
            raise AuthError("invalid_ticket", "a ticket must be short-lived", 401)
        jti = str(claims.get("jti", ""))
        now = time.time()
        self._used = {key: exp for key, exp in self._used.items() if exp > now}
        if not jti or jti in self._used:
            raise AuthError("invalid_ticket", "ticket already used", 401)
        self._used[jti] = float(claims.get("exp", now))
        return principal
