"""FastAPI dependencies and the one mapping from a ``Failure`` to an HTTP response.

Error body (every non-2xx answer our endpoints produce, except FastAPI's own 422):
``{"error": {"code": ..., "message": ..., "details": {...}}}``; the status comes from
``Error.status_code`` (400 when unset). Clients branch on ``error.code``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from tandem.mediator import Mediator
from tandem.mediator import get_mediator as _global_mediator
from tandem.result import Error


async def get_mediator(connection: HTTPConnection) -> Mediator:
    """The mediator for this request: ``app.state.mediator`` if set, else the process default.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in its thread
    pool, which cost a thread hand-off per request (20 % of the query service's CPU on cached
    reads, measured with py-spy).

    Override in tests with ``app.dependency_overrides[tandem.api.get_mediator]``. A wrapper is
    needed because depending on ``tandem.get_mediator`` directly would expose its
    ``new_instance`` argument as a query parameter.
    """
    mediator = getattr(connection.app.state, "mediator", None)
    if isinstance(mediator, Mediator):
        return mediator
    return _global_mediator()


def error_response(error: Error) -> JSONResponse:
    return JSONResponse(status_code=error.status_code or 400, content={"error": error.to_dict()})


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    """The OpenAPI model of what :func:`error_response` sends: ``{"error": {"code", "message",
    "details"}}``, so services document their error statuses with the body they answer."""

    error: ErrorDetail
