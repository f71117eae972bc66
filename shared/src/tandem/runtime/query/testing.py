"""Test helpers of the query service: a real uvicorn server in the test's event loop, read-model
documents in the projector's shape, and change notices as the projector publishes them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn
from tandem_catalog.contract import PRODUCTS_READ_MODEL, ChangeNotice

from tandem.runtime.query.bootstrap import QueryServiceSettings, create_app

Document = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running(settings: QueryServiceSettings) -> AsyncIterator[str]:
    """Serve ``create_app(settings)`` with uvicorn on a free port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def product_doc(product_id: str, version: int = 1, **fields: Any) -> Document:
    document: Document = {
        "_id": product_id,
        "id": product_id,
        "name": f"Product {product_id}",
        "description": "",
        "price": 10.0,
        "category": "general",
        "status": "active",
        "version": version,
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-01T00:00:00+00:00",
    }
    document.update(fields)
    return document


def notice(
    product_id: str, version: int, event_type: str = "ProductPriceChanged", **changed: Any
) -> bytes:
    return orjson.dumps(
        ChangeNotice(
            read_model=PRODUCTS_READ_MODEL,
            id=product_id,
            version=version,
            event_type=event_type,
            changed_fields=changed,
        ).model_dump(mode="json")
    )
