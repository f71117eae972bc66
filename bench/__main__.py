"""``python -m bench [--quick] [--only NAME ...] [--keep-stack] [--out DIR]``.

Order: the bench's own servers (reset, then up), the raw limits, the services in release
settings, then the scenarios; one table on stdout, ``bench.json`` and ``bench.png`` in the
output directory (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from tandem.auth import issue_token
from tandem.runtime.projector.store import MAX_OPS_PER_COMMAND
from tandem.settings import TandemSettings

from bench import raw, replay, report, scenarios
from bench.common import RESULTS, CpuMeter, free_port, machine
from bench.procs import JWT_SECRET, Proc, StackPorts, release_env, stack, uvicorn_const

RAW = ("raw",)
STEP_TIMEOUT = 600.0
"""A part that takes longer is reported as failed, so a hung server cannot stall the whole run."""
SCENARIOS = ("writes", "freshness", "replay", "reads", "fanout")


@dataclass(frozen=True)
class Sizes:
    concurrency: int
    duration: float
    warmup: float
    kafka_messages: int
    bulk_docs: int
    bulk_batch: int
    replay_events: int
    ws_clients: int
    ws_burst: int

    @classmethod
    def make(cls, quick: bool, tiny: bool = False) -> Sizes:
        if tiny:
            return cls(4, 1.0, 0.3, 500, 500, MAX_OPS_PER_COMMAND, 1000, 20, 5)
        if quick:
            return cls(16, 3.0, 1.0, 5000, 5000, MAX_OPS_PER_COMMAND, 10000, 200, 20)
        return cls(16, 15.0, 3.0, 50000, 50000, MAX_OPS_PER_COMMAND, 100000, 1000, 50)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


async def run(
    sizes: Sizes,
    only: set[str],
    ports: StackPorts,
    out_dir: Path,
    freshness_rate: float | None = None,
) -> dict[str, Any]:
    # Inside the loop, SIGTERM cancels the run (its finally blocks stop the services) instead
    # of raising KeyboardInterrupt wherever the interpreter happens to be.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "sizes": sizes.__dict__,
        "raw": {},
        "scenarios": {},
        "cpu_pct": {},
        "errors": {},
    }

    async def step(
        group: dict[str, Any],
        name: str,
        fn: Callable[[], Awaitable[Any]],
        pids: dict[str, int] | None = None,
    ) -> None:
        log(f"{name} ...")
        meter = CpuMeter({"bench": _self_pid(), **(pids or {})}).start()
        try:
            group[name] = await asyncio.wait_for(fn(), timeout=STEP_TIMEOUT)
            results["cpu_pct"][name] = meter.stop()
            log(f"{name}: {_brief(group[name])}")
        except Exception as exc:
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} FAILED: {exc}\n{traceback.format_exc()}")

    c, d, w = sizes.concurrency, sizes.duration, sizes.warmup
    if "raw" in only:
        port = free_port()
        const = uvicorn_const(port).start()
        try:
            const.wait_http("/const")
            await step(
                results["raw"],
                "bare_fastapi",
                lambda: raw.bare_fastapi(port, c, d, w),
                {"server": const.pid},
            )
        finally:
            const.stop()
        await step(results["raw"], "mongo_inserts", lambda: raw.mongo_inserts(ports, c, d, w))
        await step(
            results["raw"],
            "mongo_bulk_upserts",
            lambda: raw.mongo_bulk_upserts(ports, sizes.bulk_docs, sizes.bulk_batch),
        )
        await step(
            results["raw"],
            "kafka",
            lambda: raw.kafka_produce_consume(ports, sizes.kafka_messages, 12),
        )
        await step(results["raw"], "redis_get", lambda: raw.redis_get(ports, c, d, w))

    live = only & {"writes", "freshness", "reads", "fanout"}
    sc = results["scenarios"]
    if live:
        services = start_services(ports)
        pids = {p.name: p.pid for p in services} | ports.server_pids()
        try:
            settings = TandemSettings(environment="production", jwt_secret=SecretStr(JWT_SECRET))
            ctx = scenarios.Ctx(
                ports=ports,
                command_url=f"http://127.0.0.1:{services[0].port}",
                query_url=f"http://127.0.0.1:{services[1].port}",
                write_token=issue_token(settings, "bench", ["products:write"], 3600),
                read_token=issue_token(settings, "bench", ["products:read"], 3600),
                concurrency=c,
                duration=d,
                warmup=w,
                quick=sizes.duration < 10,
            )
            if "writes" in only:
                await step(sc, "writes", lambda: scenarios.writes(ctx), pids)
            if "freshness" in only:
                rate = freshness_rate or float(sc.get("writes", {}).get("rate") or 0) / 2 or 50.0
                await step(sc, "freshness", lambda: scenarios.freshness(ctx, rate), pids)
            if "reads" in only:
                await step(sc, "reads", lambda: scenarios.reads(ctx), pids)
            if "fanout" in only:
                await step(
                    sc,
                    "fanout",
                    lambda: scenarios.fanout(ctx, sizes.ws_clients, sizes.ws_burst),
                    pids,
                )
        finally:
            for p in reversed(services):
                p.stop()
    if "replay" in only:
        for n in (1, 2):
            await step(
                sc, f"replay_{n}", functools.partial(replay.replay, ports, sizes.replay_events, n)
            )
    return results


def start_services(ports: StackPorts) -> list[Proc]:
    procs = []
    for name, module in (
        ("command-service", "command_service"),
        ("query-service", "query_service"),
        ("projector", "projector"),
    ):
        port = free_port()
        procs.append(Proc(name, [sys.executable, "-m", module], release_env(ports, port), port))
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.wait_http("/readyz", timeout=120)
    except Exception:
        for p in procs:
            p.stop()
        raise
    return procs


def _self_pid() -> int:
    return os.getpid()


def _sigterm_as_ctrl_c(_signum: int, _frame: object) -> None:
    """SIGTERM ends the bench as Ctrl-C does, with KeyboardInterrupt: the run's tasks are
    cancelled, their ``finally`` blocks stop the services, and ``main`` stops the stack.
    Python's default for SIGTERM ends the process without running them, and the servers and
    services (own sessions) kept running. Raised here, not re-sent as SIGINT, because a
    bench started in the background of a shell has SIGINT ignored."""
    raise KeyboardInterrupt


def _brief(value: Any) -> str:
    text = str(value)
    return text if len(text) < 400 else text[:400] + " ..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="short smoke run (seconds, not minutes)"
    )
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", nargs="+", choices=[*RAW, *SCENARIOS], help="run only these parts"
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="leave the bench's servers running"
    )
    parser.add_argument(
        "--no-reset", action="store_true", help="keep the servers' data from last run"
    )
    parser.add_argument(
        "--freshness-rate",
        type=float,
        default=None,
        metavar="CMD_PER_S",
        help="(b)'s command rate (default: half of (a)'s rate, or 50 without (a))",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    args = parser.parse_args(argv)
    sizes = Sizes.make(args.quick, args.tiny)
    only = set(args.only or (*RAW, *SCENARIOS))
    ports = StackPorts.from_env()
    log(
        f"servers: {ports.directory} (kafka {ports.kafka}, mongo {ports.mongo}, redis {ports.redis})"
    )
    signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
    try:
        if not args.no_reset:
            stack(ports, "reset")
        stack(ports, "up")
        import uvloop

        results = uvloop.run(run(sizes, only, ports, args.out, args.freshness_rate))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: services and servers stopped")
        return 130
    finally:
        if not args.keep_stack:
            stack(ports, "down")
    json_path, png = report.write(results, args.out)
    print(report.table(results["table"]))
    if results["errors"]:
        print("\nfailed parts:")
        for name, err in results["errors"].items():
            print(f"  {name}: {err}")
    print(f"\nJSON {json_path}\nchart {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
