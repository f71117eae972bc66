"""The HTTP routes: each turns a request into a product command, through the library's
:class:`~tandem.api.CQRSEndpointFactory`.

Version checks: ``If-Match`` (``"3"``, ``W/"3"`` or ``3``) or a body ``expected_version``; a
mismatch is a 409 whose body carries ``current_version``. Discontinuing is ``POST
.../discontinue`` rather than ``DELETE`` because it records a fact and keeps the product
readable; nothing is deleted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from tandem.api import CQRSEndpointFactory, ErrorBody, default_command_builder
from tandem.auth import JWTVerifier, Principal, require_scopes
from tandem.messages import Command
from tandem.observability import correlation_id_var
from tandem_catalog import (
    ChangeProductPrice,
    CommandAccepted,
    CreateProduct,
    DiscontinueProduct,
    UpdateProductDetails,
)
from tandem_catalog.commands import PRODUCT_ID_PATTERN

from tandem.runtime.command.idempotency import MAX_KEY_LENGTH

WRITE_SCOPE = "products:write"
PREFIX = "/api/products"
# One spelling for the check and the OpenAPI pattern (ASCII classes: ``\d`` and ``\s`` mean
# more in Python than in the ECMA-262 regexes of JSON Schema). Quotes come in pairs.
IF_MATCH_PATTERN = r'^[ \t]*(?:W/)?(?:"([0-9]{1,15})"|([0-9]{1,15}))[ \t]*$'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_SERVER_SET = ("correlation_id", "command_id")
# What the middleware accepts: printable ASCII, at least one character that is not a space.
IDEMPOTENCY_KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"
# A product id in the path: the id pattern, minus "." and "..", which clients and proxies
# resolve as dot segments (the request would reach another route).
PATH_ID_PATTERN = r"^(?!\.\.?$)" + PRODUCT_ID_PATTERN.removeprefix("^")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("No or invalid bearer token (`missing_token`, `invalid_token`, `token_expired`)"),
    403: _error("The token lacks the `products:write` scope (`insufficient_scope`)"),
    409: _error(
        "Version conflict (`concurrency_conflict`, `details.current_version`), `If-Match` and "
        "`expected_version` naming different versions (`conflicting_preconditions`), a rule "
        "about the current state (`product_discontinued`), or the Idempotency-Key is in use "
        "(`idempotency_key_in_progress`)"
    ),
    413: _error("Body larger than the limit (`payload_too_large`)"),
    422: {
        "description": (
            "Malformed input: FastAPI's `{detail: [{loc, msg, type}]}` with field errors; or a "
            "broken business rule `{error: {code}}` (`invalid_price`, `invalid_price_precision`, "
            "`invalid_name`); or `idempotency_key_reused` / `invalid_idempotency_key`"
        )
    },
    503: _error(
        "MongoDB unreachable or not ready (`event_store_unavailable`, `service_starting`); "
        "nothing was written; see `Retry-After`"
    ),
}
_IDEMPOTENCY_DOC = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": (
        "Replays of the same key and body get the first response; nothing is appended. The "
        "same key with another request is a 422 `idempotency_key_reused`."
    ),
}
_IF_MATCH_DOC = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
    "description": 'Expected current version: `"3"`, `W/"3"` or `3`.',
}
_ID_DOC = {
    "name": "product_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": PATH_ID_PATTERN},
}


def _body_schema(command_type: type[Command[Any]]) -> dict[str, Any]:
    """The command's schema without what the server fills in (and, off create, the path id)."""
    schema = command_type.model_json_schema()
    hidden = {*_SERVER_SET} | ({"product_id"} if command_type is not CreateProduct else set())
    for name in hidden:
        schema.get("properties", {}).pop(name, None)
    # On create the server picks the id when the client does not.
    optional = hidden | ({"product_id"} if command_type is CreateProduct else set())
    schema["required"] = [r for r in schema.get("required", []) if r not in optional]
    return schema


def _expected_version(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    match = _IF_MATCH.fullmatch(raw)
    if match is None:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "If-Match"),
                    "msg": 'If-Match must be a version number such as "3"',
                    "input": raw[:100],
                }
            ]
        )
    return int(match.group(1) or match.group(2))


def command_builder(
    command_type: type[Command[Any]], *, new_id: bool = False
) -> Callable[[dict[str, Any], dict[str, str], Request], Command[Any]]:
    """Body and path fields, plus what only the server sets: correlation id, idempotency key
    (as ``command_id``), a new product id, and the expected version from ``If-Match``."""
    build = default_command_builder(command_type)

    def builder(body: dict[str, Any], path: dict[str, str], request: Request) -> Command[Any]:
        server_set = [
            {
                "type": "extra_forbidden",
                "loc": ("body", name),
                "msg": "set by the server, not by the client",
                "input": body[name],
            }
            for name in _SERVER_SET
            if name in body
        ]
        if server_set:
            raise RequestValidationError(server_set)
        fields = dict(body)
        fields["correlation_id"] = correlation_id_var.get()
        fields["command_id"] = request.headers.get("idempotency-key")
        if new_id:
            fields.setdefault("product_id", uuid.uuid4().hex)
        expected = _expected_version(request)
        if expected is not None:
            body_expected = fields.get("expected_version")
            if body_expected not in (None, expected):
                # Both are preconditions and both must hold: two different versions can never
                # both be current, so the request is a conflict whatever the product's state.
                raise HTTPException(
                    status_code=409,
                    detail={
                        "error": {
                            "code": "conflicting_preconditions",
                            "message": "If-Match and expected_version name different versions",
                            "details": {"if_match": expected, "expected_version": body_expected},
                        }
                    },
                )
            fields["expected_version"] = expected
        command = build(fields, path, request)
        assert isinstance(command, Command)  # the default builder is synchronous
        if new_id:
            # From the validated command: a client's product_id outside the id pattern is a
            # 422 from the validation above, never a header that cannot be encoded (a 500).
            request.state.response.headers["Location"] = f"{PREFIX}/{command.product_id}"  # type: ignore[attr-defined]
        return command

    return builder


def command_guard(verifier: JWTVerifier) -> Callable[[Request, Response], Awaitable[Principal]]:
    """``products:write`` check; it also hands the builder the response (for ``Location``)."""
    check = require_scopes(verifier, WRITE_SCOPE)

    async def guard(request: Request, response: Response) -> Principal:
        request.state.response = response
        return await check(request)

    return guard


def product_routes(verifier: JWTVerifier) -> APIRouter:
    router = APIRouter(tags=["products"])
    guard = command_guard(verifier)
    item = PREFIX + "/{product_id}"
    common: dict[str, Any] = {"response_model": CommandAccepted, "auth_dependency": guard}

    def extra(command_type: type[Command[Any]], *headers: dict[str, Any]) -> dict[str, Any]:
        return {
            "parameters": [_IDEMPOTENCY_DOC, *headers],
            "requestBody": {
                # An empty body reads as {}, which is a whole command only for discontinue.
                "required": command_type is not DiscontinueProduct,
                "content": {"application/json": {"schema": _body_schema(command_type)}},
            },
        }

    routes: list[tuple[str, str, type[Command[Any]], int, str, dict[int | str, Any]]] = [
        (
            "POST",
            PREFIX,
            CreateProduct,
            201,
            "Create a product; `product_id` may be given, else the server makes one",
            {
                201: {
                    "description": "Created",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                }
            },
        ),
        ("PATCH", item, UpdateProductDetails, 200, "Change name, description or category", {}),
        ("POST", item + "/price", ChangeProductPrice, 200, "Change the price", {}),
        ("POST", item + "/discontinue", DiscontinueProduct, 200, "Discontinue the product", {}),
    ]
    for method, path, command_type, status, summary, responses in routes:
        is_create = command_type is CreateProduct
        not_found = {} if is_create else {404: _error("Unknown product (`not_found`)")}
        CQRSEndpointFactory.create_command_endpoint(
            router,
            path,
            command_type,
            status_code=status,
            method=method,
            build_command=command_builder(command_type, new_id=is_create),
            summary=summary,
            responses={**COMMON_RESPONSES, **not_found, **responses},
            openapi_extra=(
                extra(command_type) if is_create else extra(command_type, _IF_MATCH_DOC, _ID_DOC)
            ),
            **common,
        )
    return router
