"""The HTTP routes of every declared command: each turns a request into the command, through
the library's :class:`~tandem.api.CQRSEndpointFactory`.

A :class:`~tandem.app.CommandRoute` is served at ``{spec.route}{route.path}``, with ``{id}``
named after the aggregate's ``id_field`` (so the path parameter fills the command's id field).
Version checks: ``If-Match`` (``"3"``, ``W/"3"`` or ``3``) or a body ``expected_version``; a
mismatch is a 409 whose body carries ``current_version``. A create answers ``Location:
{spec.route}/{id}``; its id may be given, else the server makes one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError

from tandem.api import CQRSEndpointFactory, ErrorBody, default_command_builder
from tandem.app import AggregateSpec, CommandAccepted, CommandRoute
from tandem.auth import JWTVerifier, Principal, require_scopes
from tandem.messages import Command
from tandem.observability import correlation_id_var
from tandem.runtime.command.idempotency import MAX_KEY_LENGTH

# One spelling for the check and the OpenAPI pattern (ASCII classes: ``\d`` and ``\s`` mean
# more in Python than in the ECMA-262 regexes of JSON Schema). Quotes come in pairs.
IF_MATCH_PATTERN = r'^[ \t]*(?:W/)?(?:"([0-9]{1,15})"|([0-9]{1,15}))[ \t]*$'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_SERVER_SET = ("correlation_id", "command_id")
# What the middleware accepts: printable ASCII, at least one character that is not a space.
IDEMPOTENCY_KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"


def path_id_pattern(id_pattern: str) -> str:
    """An id in the path: the id pattern, minus "." and "..", which clients and proxies resolve
    as dot segments (the request would reach another route)."""
    return r"^(?!\.\.?$)" + id_pattern.removeprefix("^")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


def common_responses(scope: str) -> dict[int | str, dict[str, Any]]:
    return {
        401: _error(
            "No or invalid bearer token (`missing_token`, `invalid_token`, `token_expired`)"
        ),
        403: _error(f"The token lacks the `{scope}` scope (`insufficient_scope`)"),
        409: _error(
            "Version conflict (`concurrency_conflict`, `details.current_version`), `If-Match` "
            "and `expected_version` naming different versions (`conflicting_preconditions`), a "
            "rule about the current state (the aggregate's own code), or the Idempotency-Key "
            "is in use (`idempotency_key_in_progress`)"
        ),
        413: _error("Body larger than the limit (`payload_too_large`)"),
        422: {
            "description": (
                "Malformed input: FastAPI's `{detail: [{loc, msg, type}]}` with field errors; or "
                "a broken business rule `{error: {code}}` (the aggregate's own code); or "
                "`idempotency_key_reused` / `invalid_idempotency_key`"
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


def _id_doc(spec: AggregateSpec, command_type: type[Command[Any]]) -> dict[str, Any]:
    """The path id's parameter, with the command field's own bounds when it declares them."""
    declared = command_type.model_json_schema().get("properties", {}).get(spec.id_field, {})
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    schema |= {k: declared[k] for k in ("minLength", "maxLength") if k in declared}
    schema["pattern"] = path_id_pattern(declared.get("pattern", spec.id_pattern))
    return {"name": spec.id_field, "in": "path", "required": True, "schema": schema}


def _body_schema(spec: AggregateSpec, route: CommandRoute) -> dict[str, Any]:
    """The command's schema without what the server fills in (and, off create, the path id)."""
    schema = route.command.model_json_schema()
    hidden = {*_SERVER_SET} | (set() if route.creates else {spec.id_field})
    for name in hidden:
        schema.get("properties", {}).pop(name, None)
    # On create the server picks the id when the client does not.
    optional = hidden | {spec.id_field}
    schema["required"] = [r for r in schema.get("required", []) if r not in optional]
    inlined: dict[str, Any] = _inline_definitions(schema, schema.pop("$defs", {}))
    return inlined


def _inline_definitions(node: Any, definitions: dict[str, Any]) -> Any:
    """Replace ``{"$ref": "#/$defs/X"}`` by X itself: a request body's schema sits inside the
    OpenAPI document, where pydantic's ``#/$defs`` (nested models, e.g. an order's lines)
    would point nowhere."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_definitions(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline_definitions(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_definitions(item, definitions) for item in node]
    return node


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
    spec: AggregateSpec, route: CommandRoute
) -> Callable[[dict[str, Any], dict[str, str], Request], Command[Any]]:
    """Body and path fields, plus what only the server sets: correlation id, idempotency key
    (as ``command_id``), a new id on create, and the expected version from ``If-Match``."""
    build = default_command_builder(route.command)
    new_id, id_field, prefix = route.creates, spec.id_field, spec.route.rstrip("/")

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
            fields.setdefault(id_field, uuid.uuid4().hex)
        expected = _expected_version(request)
        if expected is not None:
            body_expected = fields.get("expected_version")
            if body_expected not in (None, expected):
                # Both are preconditions and both must hold: two different versions can never
                # both be current, so the request is a conflict whatever the aggregate's state.
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
            # From the validated command: a client's id outside the id pattern is a 422 from
            # the validation above, never a header that cannot be encoded (a 500).
            location = f"{prefix}/{getattr(command, id_field)}"
            request.state.response.headers["Location"] = location
        return command

    return builder


def command_guard(
    verifier: JWTVerifier, scope: str
) -> Callable[[Request, Response], Awaitable[Principal]]:
    """The write-scope check; it also hands the builder the response (for ``Location``)."""
    check = require_scopes(verifier, scope)

    async def guard(request: Request, response: Response) -> Principal:
        request.state.response = response
        return await check(request)

    return guard


def route_path(spec: AggregateSpec, route: CommandRoute) -> str:
    """``{spec.route}{route.path}``, the ``{id}`` placeholder named after the id field."""
    return spec.route.rstrip("/") + route.path.replace("{id}", "{" + spec.id_field + "}")


def command_routes(spec: AggregateSpec, verifier: JWTVerifier) -> APIRouter:
    """Every command route of one aggregate type."""
    tag = spec.tag or spec.route.rstrip("/").rsplit("/", 1)[-1]
    router = APIRouter(tags=[tag])
    guard = command_guard(verifier, spec.scope)
    common = common_responses(spec.scope)
    for route in spec.commands:
        schema = _body_schema(spec, route)
        body = {
            # An empty body reads as {}: a whole command when the schema accepts {} (no
            # required field, no "at least one of" constraint).
            "required": any(schema.get(k) for k in ("required", "anyOf", "oneOf", "minProperties")),
            "content": {"application/json": {"schema": schema}},
        }
        if route.creates:
            parameters = [_IDEMPOTENCY_DOC]
            responses: dict[int | str, Any] = {
                route.status: {
                    "description": "Created",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                }
            }
        else:
            parameters = [_IDEMPOTENCY_DOC, _IF_MATCH_DOC, _id_doc(spec, route.command)]
            responses = {404: _error(f"Unknown {spec.aggregate_type.lower()} (`not_found`)")}
        CQRSEndpointFactory.create_command_endpoint(
            router,
            route_path(spec, route),
            route.command,
            status_code=route.status,
            method=route.method,
            build_command=command_builder(spec, route),
            summary=route.summary or None,
            responses={**common, **responses},
            openapi_extra={"parameters": parameters, "requestBody": body},
            response_model=CommandAccepted,
            auth_dependency=guard,
        )
    return router
