"""Test helpers of the query runtime: a real uvicorn server in the test's event loop, and change
notices as the projector publishes them (documents in the projector's shape are the app's:
see e.g. ``tandem_catalog.testing``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn

from tandem.app import App
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.bootstrap import QueryServiceSettings, create_app
from tandem.testing.system import free_port

Document = dict[str, Any]


@asynccontextmanager
async def running(
    settings: QueryServiceSettings, apps: Sequence[App] | None = None
) -> AsyncIterator[str]:
    """Serve ``create_app(settings, apps)`` with uvicorn on a free port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, apps),
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


def notice(
    read_model: str, document_id: str, version: int, event_type: str, **changed: Any
) -> bytes:
    """A change notice as the projector publishes it on the read model's channel."""
    return orjson.dumps(
        ChangeNotice(
            read_model=read_model,
            id=document_id,
            version=version,
            event_type=event_type,
            changed_fields=changed,
        ).model_dump(mode="json")
    )
