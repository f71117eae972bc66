"""HTTP routes: each read model's reads (through ``CQRSEndpointFactory``), tokens, the page.

The factory's query endpoint validates parameters and runs the mediator; the GET-by-id route
of a fold read model wraps it to add what HTTP caching and read-your-writes need: ``ETag`` /
``X-Read-Model-Version`` headers, ``If-None-Match`` -> 304, the ``X-Min-Version`` header as an
alias of ``min_version``, and ``Retry-After`` on ``409 stale_read_model``.

Cache first: a plain GET (no query string, no ``X-Min-Version``) whose document is in this
process's LRU is answered from it by a Starlette route placed in front of the FastAPI one,
before any query is built or any FastAPI request handling runs. That is the same answer the
handler would give (it reads the LRU first too, and the LRU only ever holds ids that passed
validation), without the parameter parsing, the model and the mediator pipeline, which were
most of a cached read's cost. Everything else (misses, ``min_version``, bad ids) takes the
full path. The hot routes also go to the front of the route table: Starlette tries routes in
order, and FastAPI's documentation routes come first otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from tandem.api import CQRSEndpointFactory, ErrorBody, get_mediator
from tandem.app import ReadModelSpec
from tandem.auth import JWTVerifier, Principal, issue_token, require_scopes
from tandem.read_model.models import PaginatedResult
from tandem.runtime.query.cache import DocumentCache
from tandem.runtime.query.queries import (
    VersionedDocument,
    get_query_for,
    noun,
    totals_query_for,
    totals_response_for,
)
from tandem.runtime.query.settings import QueryServiceSettings
from tandem.runtime.query.ws import TICKET_SCOPE

VERSION_HEADER = "X-Read-Model-Version"


def _etag(version: int) -> str:
    return f'"{version}"'


def versioned_response(request: Request, value: VersionedDocument) -> Response:
    etag = _etag(value.version)
    headers = {"ETag": etag, VERSION_HEADER: str(value.version), "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(orjson.dumps(value.document), media_type="application/json", headers=headers)


def add_document_routes(
    app: FastAPI, spec: ReadModelSpec, read_auth: Any | None, cache: DocumentCache
) -> None:
    """``{route}/search`` (when the read model declares a search) and ``{route}/{id}``."""
    route = spec.route.rstrip("/")
    search_path, by_id = f"{route}/search", f"{route}/{{id}}"
    what = noun(spec)
    if spec.search is not None:
        # Registered first: {route}/search must not be captured by {route}/{id}.
        item: Any = spec.document if spec.document is not None else dict[str, Any]
        CQRSEndpointFactory.create_query_endpoint(
            app,
            search_path,
            spec.search.query,
            response_model=PaginatedResult[item],
            auth_dependency=read_auth,
            summary=spec.search.query.__doc__ or f"Search {spec.name}: text, filters, sort, pages",
            responses={
                422: {
                    "description": (
                        "Invalid or unknown parameter (FastAPI's `detail` list). An empty range "
                        "(a minimum above its maximum) is not an error: it matches nothing"
                    )
                }
            },
        )
    query_type = get_query_for(spec)
    # The factory registers its endpoint on a scratch router; the wrapper below is the route.
    scratch = APIRouter()
    get_document = CQRSEndpointFactory.create_query_endpoint(
        scratch, by_id, query_type, auth_dependency=read_auth
    )

    async def document(request: Request) -> Response:
        header = request.headers.get("x-min-version")
        # The mediator is looked up here, not declared as a dependency: FastAPI's dependency
        # solving was the largest part of this route's own cost on a cached read.
        mediator = await get_mediator(request)
        if header is not None and "min_version" not in request.query_params:
            query = [*request.query_params.multi_items(), ("min_version", header)]
            scope = {**request.scope, "query_string": urlencode(query).encode()}
            request = Request(scope, request.receive)
        value = await get_document(request, mediator)
        if isinstance(value, VersionedDocument):
            return versioned_response(request, value)
        if isinstance(value, JSONResponse) and value.status_code == 409:
            details = orjson.loads(value.body).get("error", {}).get("details", {})
            value.headers["Retry-After"] = "1"
            value.headers[VERSION_HEADER] = str(details.get("current_version", 0))
        return value  # type: ignore[no-any-return]

    app.add_api_route(
        by_id,
        document,
        methods=["GET"],
        name=query_type.__name__,
        summary=f"One {what} (optionally at least min_version; see the consistency contract)",
        dependencies=[Depends(read_auth)] if read_auth else None,
        openapi_extra=scratch.routes[0].openapi_extra,  # type: ignore[attr-defined]
        responses={
            200: {"description": f"The {what}; ETag and X-Read-Model-Version carry its version"},
            304: {"description": "If-None-Match matched the current version"},
            404: {"description": f"No such {what} (error body)"},
            409: {"description": "stale_read_model: min_version not reached within wait_ms"},
            422: {"description": "Invalid parameter"},
        },
    )
    full = next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == by_id)
    hot: list[BaseRoute] = [r for r in app.router.routes if getattr(r, "path", None) == search_path]
    if read_auth is None:  # with read auth every read goes through its dependency
        hot.append(cache_first_route(by_id, cache, full))
    hot.append(full)
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]


def add_totals_route(app: FastAPI, spec: ReadModelSpec, read_auth: Any | None) -> None:
    """``{route}``: every group of a totals read model, ``{"items": [...]}``."""
    CQRSEndpointFactory.create_query_endpoint(
        app,
        spec.route,
        totals_query_for(spec),
        response_model=totals_response_for(spec),
        auth_dependency=read_auth,
        summary=f"Every group of {spec.name}",
    )


def cache_first_route(path: str, cache: DocumentCache, full: BaseRoute) -> Route:
    """A plain Starlette route in front of the FastAPI one: a plain read of a document in the
    LRU is answered here; everything else goes on to ``full`` (same path, same scope)."""
    return Route(path, CacheFirst(cache, full), methods=["GET"], include_in_schema=False)


class CacheFirst:
    """The ASGI app of :func:`cache_first_route` (a class: Starlette wraps functions)."""

    def __init__(self, cache: DocumentCache, full: BaseRoute) -> None:
        self.cache = cache
        self.full = full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's router does not record a plain Starlette route as the scope's route; the
        # request metrics label by it, so name the route this stands in for.
        scope["route"] = self.full
        if not scope["query_string"] and not any(
            key == b"x-min-version" for key, _ in scope["headers"]
        ):
            document = self.cache.memory_hit(scope["path_params"]["id"])
            if document is not None:
                versioned = VersionedDocument(document, int(document["version"]))
                await versioned_response(Request(scope), versioned)(scope, receive, send)
                return
        await self.full.handle(scope, receive, send)


class TokenRequest(BaseModel):
    subject: str | None = Field(default=None, min_length=1, max_length=100)
    """Default: ``<first app>-page``."""
    scopes: list[str] | None = None
    """Default: every read and write scope of the served apps."""


def add_token_routes(
    app: FastAPI,
    settings: QueryServiceSettings,
    verifier: JWTVerifier,
    *,
    read_scopes: Sequence[str],
    dev_scopes: Sequence[str],
    page_subject: str = "live-page",
) -> None:
    """``/api/ws-ticket`` (a ticket for every live read scope the caller holds; it must hold
    the first) and, in development, ``/dev/token``."""
    ticket_ttl, dev_ttl = settings.ws_ticket_ttl_s, settings.dev_token_ttl_s
    read = require_scopes(verifier, *read_scopes[:1])

    @app.post("/api/ws-ticket", tags=["websocket"], summary="Short-lived WebSocket ticket")
    async def ws_ticket(principal: Principal = Depends(read)) -> dict[str, Any]:
        # (a default, not Annotated: ``read`` is local and string annotations resolve globally)
        if settings.jwt_algorithm != "HS256":
            return JSONResponse(  # type: ignore[return-value]
                {
                    "error": {
                        "code": "tickets_unavailable",
                        "message": "use first-message auth",
                        "details": {},
                    }
                },
                status_code=501,
            )
        granted = [s for s in read_scopes if verifier.disabled or principal.has(s)]
        ticket = issue_token(settings, principal.subject, [*granted, TICKET_SCOPE], ticket_ttl)
        return {"ticket": ticket, "expires_in": ticket_ttl}

    @app.post(
        "/dev/token",
        tags=["development"],
        summary="Development only: mint a token",
        responses={
            400: {"description": "The body could not be read (FastAPI's `detail`)"},
            403: {
                "model": ErrorBody,
                "description": "Not a development deployment, or not HS256 (`development_only`)",
            },
        },
    )
    async def dev_token(request: Annotated[TokenRequest, Body()] = TokenRequest()) -> Any:  # noqa: B008
        if settings.environment != "development" or settings.jwt_algorithm != "HS256":
            return JSONResponse(
                {
                    "error": {
                        "code": "development_only",
                        "message": "tokens are minted here only in development",
                        "details": {},
                    }
                },
                status_code=403,
            )
        asked = dev_scopes if request.scopes is None else request.scopes
        scopes = [scope for scope in asked if scope in dev_scopes]
        token = issue_token(settings, request.subject or page_subject, scopes, dev_ttl)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": dev_ttl,
            "scopes": scopes,
        }


def add_page_routes(app: FastAPI, static: Path, config: dict[str, Any]) -> None:
    """The first app's live page: ``index.html`` at ``/``, its assets under ``/static``."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(static / "index.html")

    @app.get("/config.json", include_in_schema=False)
    async def page_config() -> dict[str, Any]:
        return config

    app.mount("/static", StaticFiles(directory=static), name="static")
