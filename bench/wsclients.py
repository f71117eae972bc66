"""``python -m bench.wsclients URL TOKEN CLIENTS BURST``: the fan-out scenario's clients, in a
process of their own so they do not share an event loop with the publisher.

Prints ``READY <n>`` once every client is authenticated and subscribed, waits for ``GO`` on
stdin, collects ``change`` frames until each client has ``BURST`` of them (or a deadline), and
prints one JSON object: receive times per product id, closes and its own CPU use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import defaultdict
from typing import Any


async def main(url: str, token: str, n: int, burst: int) -> None:
    from websockets.asyncio.client import ClientConnection, connect

    frames: dict[str, list[float]] = defaultdict(list)
    closed = 0
    done = 0
    all_done = asyncio.Event()

    async def open_one() -> ClientConnection | None:
        try:
            ws = await connect(url, max_queue=None, open_timeout=60, ping_interval=None)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "subscribed":
                    return ws
        except Exception as exc:
            print(f"connect failed: {exc}", file=sys.stderr)
            return None

    conns: list[ClientConnection] = []
    for start in range(0, n, 100):
        batch = await asyncio.gather(*(open_one() for _ in range(min(100, n - start))))
        conns.extend(ws for ws in batch if ws is not None)

    async def reader(ws: ClientConnection) -> None:
        nonlocal closed, done
        got = 0
        try:
            async for raw in ws:
                t = time.time()
                frame = json.loads(raw)
                if frame.get("type") != "change":
                    continue
                frames[frame["id"]].append(t)
                got += 1
                if got >= burst:
                    break
        except Exception:
            closed += 1
        done += 1
        if done >= len(conns):
            all_done.set()

    tasks = [asyncio.create_task(reader(ws)) for ws in conns]
    print(f"READY {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), timeout=120)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    for task in tasks:
        task.cancel()
    out: dict[str, Any] = {
        "frames": frames,
        "closed": closed,
        "cpu_pct": round(100 * cpu / max(wall, 1e-6), 1),
    }
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
