"""Logs, metrics and health endpoints that every Tandem service exposes the same way.

- Logs are JSON lines (structlog; a console format for a person's terminal in development)
  carrying the request's correlation id, which the command
  side copies into event metadata and Kafka headers, so one id follows a change end to end.
- ``/metrics`` is Prometheus text; HTTP metrics are labelled by route template, never by raw
  path, so ids in URLs cannot explode the label set.
- ``/healthz`` is liveness (the process runs; no dependency checks, or a database outage would
  get every pod restarted), ``/readyz`` is readiness (each dependency answers).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

correlation_id_var: ContextVar[str | None] = ContextVar("tandem_correlation_id", default=None)

HTTP_REQUESTS = Counter(
    "tandem_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tandem_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def _add_correlation_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    cid = correlation_id_var.get()
    if cid is not None:
        event.setdefault("correlation_id", cid)
    return event


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at write time, not at configure time.

    Loggers are cached on first use; holding the original stream would keep writing to a stream
    that a test runner (or a daemonizing wrapper) has since replaced and closed.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Logs on stdout for ``service``, stdlib loggers (uvicorn, aiokafka) included: JSON lines
    (``fmt="json"``), or structlog's console format (``"console"``; colours on a terminal)."""
    if fmt not in ("json", "console"):
        raise ValueError(f"log format must be json or console, not {fmt!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            *([structlog.processors.format_exc_info] if fmt == "json" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(_CurrentStdout())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs duplicate the metrics and cost a line per request on the hot path.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def new_correlation_id() -> str:
    """32 hex digits. A correlation id must be unique, not secret: ``random`` (seeded per
    process from the OS) takes 0.34 us against ``uuid4``'s 2.2 us (a system call and an
    object), on every request that arrives without ``X-Correlation-ID``."""
    return f"{random.getrandbits(128):032x}"


class CorrelationIdMiddleware:
    """Takes ``X-Correlation-ID`` from the request (or makes one) and echoes it back."""

    header = b"x-correlation-id"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cid = ""
        for key, value in scope["headers"]:
            if key == self.header:
                cid = value.decode("latin-1")[:128]
                break
        cid = cid or new_correlation_id()
        token = correlation_id_var.set(cid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (self.header, cid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)


class PrometheusMiddleware:
    """Counts requests and observes latency by route template and status."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        # Label children by (method, route, status): ``labels()`` takes a lock and builds a
        # key on every call, twice per request otherwise.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_capturing(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_capturing)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (scope["method"], template, status_code)
            children = self._children.get(key)
            if children is None:
                method = key[0]
                children = (
                    HTTP_REQUESTS.labels(self.service, method, template, str(status_code)),
                    HTTP_LATENCY.labels(self.service, method, template),
                )
                if len(self._children) < 4096:  # methods are the client's: keep a bound
                    self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


HealthCheck = Callable[[], Awaitable[object]]


def health_router(
    checks: Mapping[str, HealthCheck],
    timeout: float = 2.0,
    informational: Mapping[str, HealthCheck] | None = None,
) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics``; ``/readyz`` names what is down.

    ``informational`` checks are reported but do not fail readiness: a dependency the service
    degrades around (a cache) should not take every instance out of the load balancer.
    """
    extra = dict(informational or {})
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        responses={503: {"description": "A dependency is down; the body names it"}},
    )
    async def readyz() -> JSONResponse:
        async def run(name: str, check: HealthCheck) -> tuple[str, str]:
            try:
                await asyncio.wait_for(check(), timeout)
            except Exception as exc:  # a readiness probe reports any failure, it never raises
                return name, f"down: {type(exc).__name__}: {exc}"[:300]
            return name, "ok"

        results = dict(await asyncio.gather(*(run(n, c) for n, c in checks.items())))
        ready = all(v == "ok" for v in results.values())
        degraded = dict(await asyncio.gather(*(run(n, c) for n, c in extra.items())))
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "checks": results,
                "degraded": degraded,
            },
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return metrics_response()

    return router


__all__ = [
    "CorrelationIdMiddleware",
    "PrometheusMiddleware",
    "configure_logging",
    "correlation_id_var",
    "health_router",
    "metrics_response",
]
