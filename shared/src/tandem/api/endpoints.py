"""Routes that turn an HTTP request into a command or query and a ``Result`` into a response.

Unlike the seed, input is validated by the message's own pydantic model *before* it reaches
the mediator, and a validation error is FastAPI's usual 422 with field locations, never a 500.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Collection
from typing import Annotated, Any, get_origin

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from tandem.api.dependencies import error_response, get_mediator
from tandem.api.schema import query_parameters, request_body
from tandem.api.websocket import create_websocket_endpoint
from tandem.mediator import Mediator
from tandem.messages import Command, Query

CommandBuilder = Callable[
    [dict[str, Any], dict[str, str], Request], "Command[Any] | Awaitable[Command[Any]]"
]
Endpoint = Callable[..., Awaitable[Any]]
MediatorDep = Annotated[Mediator, Depends(get_mediator)]
_MULTI_VALUED = (list, tuple, set, frozenset)


def _validation_error(
    exc: ValidationError, path_fields: Collection[str], source: str
) -> RequestValidationError:
    """Re-locate pydantic's errors as FastAPI would (``["query", "page"]``) for the 422 body."""
    errors = []
    for err in exc.errors(include_url=False):
        first = str(err["loc"][0]) if err["loc"] else ""
        errors.append({**err, "loc": ("path" if first in path_fields else source, *err["loc"])})
    return RequestValidationError(errors)


class _NonFiniteNumber(ValueError):
    def __init__(self, spelling: str) -> None:
        super().__init__(f"{spelling} is not a finite number")
        self.spelling = spelling


def _refuse_constant(spelling: str) -> float:
    # ``NaN``, ``Infinity``, ``-Infinity``: not JSON (RFC 8259), but ``json.loads`` takes them.
    raise _NonFiniteNumber(spelling)


def _finite_float(spelling: str) -> float:
    value = float(spelling)
    if not math.isfinite(value):  # ``1e400`` overflows to infinity
        raise _NonFiniteNumber(spelling[:50])
    return value


def parse_json_body(raw: bytes) -> Any:
    """Strict JSON: like ``json.loads`` but refusing ``NaN``, ``Infinity`` and numbers that
    overflow a float (``1e400``). Nothing downstream (validation, the 422 body, storage) can
    represent them, so they are a client error here rather than a 500 later.

    Raises ``RequestValidationError`` (422): ``type`` ``finite_number`` for such a number,
    ``json_invalid`` for anything else that is not JSON.
    """
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFiniteNumber as exc:
        err: dict[str, Any] = {
            "type": "finite_number",
            "loc": ("body",),
            "msg": f"invalid JSON: {exc.spelling} is not a finite number",
            "input": exc.spelling,
        }
        raise RequestValidationError([err]) from None
    except ValueError as exc:
        invalid: dict[str, Any] = {
            "type": "json_invalid",
            "loc": ("body",),
            "msg": f"invalid JSON: {exc}",
            "input": None,
        }
        raise RequestValidationError([invalid]) from None


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        err = {
            "type": "model_attributes_type",
            "loc": ("body",),
            "msg": "expected a JSON object",
            "input": body,
        }
        raise RequestValidationError([err])
    return body


def default_command_builder(command_type: type[Command[Any]]) -> CommandBuilder:
    """Body fields plus path parameters; a body field contradicting the path is a 422."""

    def build(body: dict[str, Any], path_params: dict[str, str], request: Request) -> Command[Any]:
        conflicts = [
            {
                "type": "path_conflict",
                "loc": ("body", key),
                "input": body[key],
                "msg": f"conflicts with path parameter {key}={value!r}",
            }
            for key, value in path_params.items()
            if key in body and str(body[key]) != value
        ]
        if conflicts:
            raise RequestValidationError(conflicts)
        try:
            return command_type.model_validate({**body, **path_params})
        except ValidationError as exc:
            raise _validation_error(exc, path_params, "body") from None

    return build


def _query_params(query_type: type[BaseModel], request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in request.query_params:
        field = query_type.model_fields.get(name)
        annotation = field.annotation if field is not None else None
        multi = annotation in _MULTI_VALUED or get_origin(annotation) in _MULTI_VALUED
        values = request.query_params.getlist(name)
        params[name] = values if multi else values[-1]
    return params


class CQRSEndpointFactory:
    """Registers command, query and WebSocket routes on a router (or app)."""

    @staticmethod
    def create_command_endpoint(  # noqa: PLR0917 - the seed's positional signature
        router: APIRouter | FastAPI,
        path: str,
        command_type: type[Command[Any]],
        response_model: Any = None,
        status_code: int = 200,
        auth_dependency: Callable[..., Any] | None = None,
        method: str = "POST",
        build_command: CommandBuilder | None = None,
        **endpoint_kwargs: Any,
    ) -> Endpoint:
        """``build_command(body, path_params, request)`` makes the command (sync or async);
        the default merges path parameters into the body (``PUT /products/{id}/price``)."""
        builder = build_command or default_command_builder(command_type)

        async def endpoint(request: Request, mediator: MediatorDep) -> Any:
            body = await _json_body(request)
            command = builder(body, dict(request.path_params), request)
            if inspect.isawaitable(command):
                command = await command
            result = await mediator.execute_command(command)
            if not result.is_success():
                return error_response(result.error)
            return result.value

        endpoint_kwargs.setdefault("openapi_extra", {}).setdefault(
            "requestBody", request_body(command_type)
        )
        endpoint_kwargs.setdefault("name", command_type.__name__)
        router.add_api_route(
            path,
            endpoint,
            methods=[method.upper()],
            response_model=response_model,
            status_code=status_code,
            dependencies=[Depends(auth_dependency)] if auth_dependency else None,
            responses={400: {"description": "Failure (error body)"}}
            | endpoint_kwargs.pop("responses", {}),
            **endpoint_kwargs,
        )
        return endpoint

    @staticmethod
    def create_query_endpoint(  # noqa: PLR0917 - the seed's positional signature
        router: APIRouter | FastAPI,
        path: str,
        query_type: type[Query[Any]],
        response_model: Any = None,
        status_code: int = 200,
        auth_dependency: Callable[..., Any] | None = None,
        **endpoint_kwargs: Any,
    ) -> Endpoint:
        """GET route; query-string and path parameters merge (path wins) into ``query_type``."""

        async def endpoint(request: Request, mediator: MediatorDep) -> Any:
            path_params = dict(request.path_params)
            params = {**_query_params(query_type, request), **path_params}
            try:
                query = query_type.model_validate(params)
            except ValidationError as exc:
                raise _validation_error(exc, path_params, "query") from None
            result = await mediator.execute_query(query)
            if not result.is_success():
                return error_response(result.error)
            return result.value

        endpoint_kwargs.setdefault("openapi_extra", {}).setdefault(
            "parameters", query_parameters(query_type, path)
        )
        endpoint_kwargs.setdefault("name", query_type.__name__)
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            response_model=response_model,
            status_code=status_code,
            dependencies=[Depends(auth_dependency)] if auth_dependency else None,
            **endpoint_kwargs,
        )
        return endpoint

    create_websocket_endpoint = staticmethod(create_websocket_endpoint)


def _openapi_query_parameters(query_type: type[BaseModel], path: str) -> list[dict[str, Any]]:
    """Kept for callers of the old private helper; see :func:`tandem.api.schema.query_parameters`."""
    return query_parameters(query_type, path)
