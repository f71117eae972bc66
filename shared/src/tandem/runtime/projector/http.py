"""The projector's small HTTP server: ``/healthz``, ``/readyz``, ``/metrics`` (port 8003)."""

from __future__ import annotations

from fastapi import FastAPI

from tandem.observability import HealthCheck, PrometheusMiddleware, health_router


def create_app(checks: dict[str, HealthCheck]) -> FastAPI:
    app = FastAPI(title="tandem projector", docs_url=None, redoc_url=None)
    app.include_router(health_router(checks))
    app.add_middleware(PrometheusMiddleware, service="projector")
    return app
