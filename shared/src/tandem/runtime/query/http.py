"""HTTP routes: the reads (through ``CQRSEndpointFactory``), tokens for the page, the page.

The factory's query endpoint validates parameters and runs the mediator; the GET-by-id route
wraps it to add what HTTP caching and read-your-writes need: ``ETag`` / ``X-Read-Model-Version``
headers, ``If-None-Match`` -> 304, the ``X-Min-Version`` header as an alias of ``min_version``,
and ``Retry-After`` on ``409 stale_read_model``.

Cache first: a plain GET (no query string, no ``X-Min-Version``) whose product is in this
process's LRU is answered from it by a Starlette route placed in front of the FastAPI one,
before any query is built or any FastAPI request handling runs. That is the same answer the
handler would give (it reads the LRU first too, and the LRU only ever holds ids that passed
validation), without the parameter parsing, the model and the mediator pipeline, which were
most of a cached read's cost. Everything else (misses, ``min_version``, bad ids) takes the
full path. The hot routes also go to the front of the route table: Starlette tries routes in
order, and FastAPI's documentation routes come first otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
import tandem_catalog
from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from tandem.api import CQRSEndpointFactory, ErrorBody, get_mediator
from tandem.auth import JWTVerifier, Principal, issue_token, require_scopes
from tandem.settings import TandemSettings
from tandem_catalog.queries import (
    CategoryStats,
    GetCategoryStats,
    GetProduct,
    ProductPage,
    SearchProducts,
    VersionedProduct,
)

from tandem.runtime.query.cache import ProductCache
from tandem.runtime.query.ws import READ_SCOPE, TICKET_SCOPE

STATIC = Path(tandem_catalog.__file__).parent / "static"
VERSION_HEADER = "X-Read-Model-Version"
SEARCH = "/api/products/search"
PRODUCT = "/api/products/{id}"
DEV_SCOPES = ("products:read", "products:write")


def _etag(version: int) -> str:
    return f'"{version}"'


def versioned_response(request: Request, value: VersionedProduct) -> Response:
    etag = _etag(value.version)
    headers = {"ETag": etag, VERSION_HEADER: str(value.version), "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(orjson.dumps(value.document), media_type="application/json", headers=headers)


def add_read_routes(app: FastAPI, read_auth: Any | None, cache: ProductCache) -> None:
    # Registered first: /api/products/search must not be captured by /api/products/{id}.
    CQRSEndpointFactory.create_query_endpoint(
        app,
        SEARCH,
        SearchProducts,
        response_model=ProductPage,
        auth_dependency=read_auth,
        summary="Search products: text, filters, sort, pages",
        responses={
            422: {
                "description": (
                    "Invalid or unknown parameter (FastAPI's `detail` list). An empty price "
                    "range (`min_price` > `max_price`) is not an error: it matches nothing"
                )
            }
        },
    )
    CQRSEndpointFactory.create_query_endpoint(
        app,
        "/api/categories/stats",
        GetCategoryStats,
        response_model=CategoryStats,
        auth_dependency=read_auth,
        summary="Active products and average price per category",
    )
    # The factory registers its endpoint on a scratch router; the wrapper below is the route.
    scratch = APIRouter()
    get_product = CQRSEndpointFactory.create_query_endpoint(
        scratch, "/api/products/{id}", GetProduct, auth_dependency=read_auth
    )

    async def product(request: Request) -> Response:
        header = request.headers.get("x-min-version")
        # The mediator is looked up here, not declared as a dependency: FastAPI's dependency
        # solving was the largest part of this route's own cost on a cached read.
        mediator = await get_mediator(request)
        if header is not None and "min_version" not in request.query_params:
            query = [*request.query_params.multi_items(), ("min_version", header)]
            scope = {**request.scope, "query_string": urlencode(query).encode()}
            request = Request(scope, request.receive)
        value = await get_product(request, mediator)
        if isinstance(value, VersionedProduct):
            return versioned_response(request, value)
        if isinstance(value, JSONResponse) and value.status_code == 409:
            details = orjson.loads(value.body).get("error", {}).get("details", {})
            value.headers["Retry-After"] = "1"
            value.headers[VERSION_HEADER] = str(details.get("current_version", 0))
        return value  # type: ignore[no-any-return]

    app.add_api_route(
        PRODUCT,
        product,
        methods=["GET"],
        name="GetProduct",
        summary="One product (optionally at least min_version; see the consistency contract)",
        dependencies=[Depends(read_auth)] if read_auth else None,
        openapi_extra=scratch.routes[0].openapi_extra,  # type: ignore[attr-defined]
        responses={
            200: {"description": "The product; ETag and X-Read-Model-Version carry its version"},
            304: {"description": "If-None-Match matched the current version"},
            404: {"description": "No such product (error body)"},
            409: {"description": "stale_read_model: min_version not reached within wait_ms"},
            422: {"description": "Invalid parameter"},
        },
    )
    full = next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == PRODUCT)
    hot: list[BaseRoute] = [r for r in app.router.routes if getattr(r, "path", None) == SEARCH]
    if read_auth is None:  # with read auth every read goes through its dependency
        hot.append(cache_first_route(PRODUCT, cache, full))
    hot.append(full)
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]


def cache_first_route(path: str, cache: ProductCache, full: BaseRoute) -> Route:
    """A plain Starlette route in front of the FastAPI one: a plain read of a product in the
    LRU is answered here; everything else goes on to ``full`` (same path, same scope)."""
    return Route(path, CacheFirst(cache, full), methods=["GET"], include_in_schema=False)


class CacheFirst:
    """The ASGI app of :func:`cache_first_route` (a class: Starlette wraps functions)."""

    def __init__(self, cache: ProductCache, full: BaseRoute) -> None:
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
                versioned = VersionedProduct(document, int(document["version"]))
                await versioned_response(Request(scope), versioned)(scope, receive, send)
                return
        await self.full.handle(scope, receive, send)


class TokenRequest(BaseModel):
    subject: str = Field(default="catalog-page", min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: list(DEV_SCOPES))


def add_token_routes(
    app: FastAPI, settings: TandemSettings, verifier: JWTVerifier, ticket_ttl: int, dev_ttl: int
) -> None:
    read = require_scopes(verifier, READ_SCOPE)

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
        ticket = issue_token(settings, principal.subject, [READ_SCOPE, TICKET_SCOPE], ticket_ttl)
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
        scopes = [scope for scope in request.scopes if scope in DEV_SCOPES]
        token = issue_token(settings, request.subject, scopes, dev_ttl)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": dev_ttl,
            "scopes": scopes,
        }


def add_page_routes(app: FastAPI, config: dict[str, Any]) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/config.json", include_in_schema=False)
    async def page_config() -> dict[str, Any]:
        return config

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
