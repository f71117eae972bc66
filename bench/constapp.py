"""The bare FastAPI endpoint of the raw limits: a constant JSON answer, nothing else.

Served by uvicorn in its own process with the same release settings as the services
(uvloop, httptools, log level warning, no access log).
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
CONSTANT = {"id": "00000000-0000-0000-0000-000000000000", "version": 1, "name": "constant"}


@app.get("/const")
async def constant() -> dict[str, object]:
    return CONSTANT
