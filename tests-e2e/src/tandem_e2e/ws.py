"""A WebSocket client of ``/ws/products`` that records every message it gets and resyncs.

Protocol (docs/query-service.md): the first frame authenticates (``{"type": "auth", "token",
"ids"?, "event_types"?, "versions"?}``); the server answers ``subscribed``, then ``change``
frames (id, version, event_type, changed_fields), ``snapshot`` frames after a resync, and
``resync_required`` when its Redis subscription lost notices. Like a real client, this one
reconnects with the versions it has, and answers ``resync_required`` with a ``resync``.
:func:`message_key` is the one place that reads a message's product id and version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect


def message_key(message: dict[str, Any]) -> tuple[str, int] | None:
    """(product id, version) of a change message, or None for control frames."""
    data = message.get("data") if isinstance(message.get("data"), dict) else message
    assert isinstance(data, dict)
    pid = data.get("id") or data.get("aggregate_id") or message.get("id")
    version = data.get("version", message.get("version"))
    if isinstance(pid, str) and isinstance(version, int):
        return pid, version
    return None


@dataclass
class WsWatcher:
    url: str
    token_factory: Callable[[], str]
    query: str = ""
    ids: list[str] | None = None
    reconnect: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    closes: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _ws: ClientConnection | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False

    async def start(self, timeout: float = 20) -> WsWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), timeout)
        return self

    async def _open(self) -> ClientConnection:
        ws = await connect(f"{self.url}{self.query}", open_timeout=10, ping_interval=None)
        hello: dict[str, Any] = {"type": "auth", "token": self.token_factory()}
        if self.ids is not None:
            hello["ids"] = self.ids
        known = self.versions()
        if known:
            hello["versions"] = dict(list(known.items())[:1000])
        await ws.send(json.dumps(hello))
        return ws

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                ws = await self._open()
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.errors.append(repr(exc))
                if not self.reconnect:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            self.connects += 1
            self._ws = ws
            backoff = 0.2
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if isinstance(message, dict):
                        message["_received"] = time.monotonic()
                        self.messages.append(message)
                        if message.get("type") == "subscribed":
                            self._connected.set()
                        elif message.get("type") == "resync_required":
                            resync = {"type": "resync", "versions": self.versions()}
                            await ws.send(json.dumps(resync))
            except websockets.ConnectionClosed:
                pass
            finally:
                self.closes.append(ws.close_code)
                await ws.close()
            if not self.reconnect:
                return

    def versions(self) -> dict[str, int]:
        """Highest version seen per product id."""
        seen: dict[str, int] = {}
        for message in self.messages:
            key = message_key(message)
            if key is not None:
                seen[key[0]] = max(seen.get(key[0], 0), key[1])
        return seen

    def changes(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "change"]

    def keys(self) -> list[tuple[str, int]]:
        return [k for m in self.messages if (k := message_key(m)) is not None]

    async def resync(self, versions: dict[str, int]) -> None:
        """Ask for the current state of ``versions``' ids newer than the versions given."""
        if self._ws is not None:
            await self._ws.send(json.dumps({"type": "resync", "versions": versions}))

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
