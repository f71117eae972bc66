"""Fan-out of change notices to WebSocket clients, fed by the process's one subscriber.

A notice is serialized once into a text frame and appended to the bounded queue of every
client whose filters match; each client has its own sender task, so a slow client only ever
blocks itself. A client whose queue overflows is marked dropped, its sender is cancelled (it
may be stuck waiting for the socket to drain) and the endpoint closes it with 1013.
Heartbeats come from one process-wide timer, not one timer per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Collection

import orjson

from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.metrics import WS_CLIENTS, WS_DROPPED


class WsClient:
    __slots__ = ("dropped", "event_types", "frames", "ids", "limit", "sender", "wakeup")

    def __init__(
        self,
        limit: int,
        event_types: Collection[str],
        ids: Collection[str] | None,
    ) -> None:
        self.limit = limit
        self.event_types = frozenset(event_types)
        self.ids = frozenset(ids) if ids else None
        self.frames: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.dropped = False
        self.sender: asyncio.Task[None] | None = None

    def wants(self, notice: ChangeNotice) -> bool:
        return notice.event_type in self.event_types and (self.ids is None or notice.id in self.ids)

    def offer(self, frame: str) -> None:
        """Queue a change frame; on overflow drop the client (never block the fan-out)."""
        if self.dropped:
            return
        if len(self.frames) >= self.limit:
            self.drop()
            return
        self.frames.append(frame)
        self.wakeup.set()

    def control(self, frame: str) -> None:
        """Queue a reply (pong, snapshot, heartbeat): not counted against the limit."""
        if not self.dropped:
            self.frames.append(frame)
            self.wakeup.set()

    def drop(self) -> None:
        WS_DROPPED.inc(len(self.frames) + 1)
        self.dropped = True
        self.frames.clear()
        self.wakeup.set()
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()


def change_frame(notice: ChangeNotice) -> str:
    return orjson.dumps({"type": "change", **notice.model_dump(mode="json")}).decode()


class FanOut:
    def __init__(self, heartbeat_interval: float = 15.0) -> None:
        self.clients: set[WsClient] = set()
        self.heartbeat_interval = heartbeat_interval
        self._heartbeat_task: asyncio.Task[None] | None = None

    def add(self, client: WsClient) -> None:
        self.clients.add(client)
        WS_CLIENTS.inc()

    def remove(self, client: WsClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            WS_CLIENTS.dec()

    def on_notice(self, notice: ChangeNotice, raw: bytes) -> None:
        if not self.clients:
            return
        frame = change_frame(notice)  # once per notice, whatever the number of clients
        for client in self.clients:
            if client.wants(notice):
                client.offer(frame)

    def on_reconnect(self) -> None:
        """Notices may have been lost while the subscriber was away: clients should resync."""
        frame = orjson.dumps({"type": "resync_required", "reason": "notices lost"}).decode()
        for client in self.clients:
            client.control(frame)

    async def start(self) -> None:
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="ws-heartbeats")

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            frame = orjson.dumps({"type": "heartbeat", "ts": time.time()}).decode()
            for client in list(self.clients):
                client.control(frame)
