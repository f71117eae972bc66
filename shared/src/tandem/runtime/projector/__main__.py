"""``python -m projector [run] [--read-models a,b]``, ``dlq list|replay``, ``rebuild <name>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

import uvicorn

from tandem.app import AppError
from tandem.kafka import ensure_topics
from tandem.observability import configure_logging
from tandem.runtime.contract import dlq_topic
from tandem.runtime.projector.bootstrap import (
    ProjectorSettings,
    build_consumer,
    clients,
    kafka_consumer,
    kafka_producer,
)
from tandem.runtime.projector.dlq import list_dead_letters, replay_dead_letters
from tandem.runtime.projector.http import create_app

logger = logging.getLogger("projector")


async def run(settings: ProjectorSettings) -> None:
    # SIGTERM/SIGINT from the first moment: one that arrives while the process still starts
    # (topics, clients, indexes: seconds on a busy machine) ends it cleanly once the consumer
    # exists, instead of killing it with the default handler.
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    async with clients(settings) as c:
        # Subscribing to a missing topic would idle until the next metadata refresh (minutes).
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            c.served.topics,
            partitions=settings.partitions,
            replication_factor=settings.topic_replication_factor,
        )
        consumer = kafka_consumer(settings, c.served.group_id)
        producer = kafka_producer(settings)
        await producer.start()
        await consumer.start()
        runner = await build_consumer(c, consumer, producer)

        async def mongo_ready() -> object:
            return await c.read_db.command("ping")

        async def redis_ready() -> object:
            return await c.redis.ping()

        async def kafka_ready() -> object:
            if not consumer.assignment() and not runner.started.is_set():
                raise RuntimeError("not subscribed yet")
            return True

        app = create_app({"mongo": mongo_ready, "redis": redis_ready, "kafka": kafka_ready})
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                lifespan="off",
            )
        )
        server_task = asyncio.create_task(server.serve())
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        if stop_requested.is_set():
            runner.stop()
        work = asyncio.create_task(runner.run())
        stop_wait = asyncio.create_task(runner.stopping.wait())
        await asyncio.wait([work, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        try:
            # Stop fetching, finish the batch in hand, commit; give up after the grace period
            # (whatever was not committed is replayed by the next owner, idempotently).
            await asyncio.wait_for(asyncio.shield(work), settings.shutdown_grace_s)
        except TimeoutError:
            logger.error(
                "drain exceeded %.1fs; leaving uncommitted work", settings.shutdown_grace_s
            )
            work.cancel()
        finally:
            server.should_exit = True
            await asyncio.gather(server_task, return_exceptions=True)
            await consumer.stop()
            await producer.stop()
        if work.done() and not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]


async def rebuild(settings: ProjectorSettings, name: str) -> str:
    from tqdm import tqdm

    async with clients(settings) as c:
        rebuilder = c.rebuilder(name)
        app = next(app for app in c.apps if name in {rm.name for rm in app.read_models})
        total = await c.write_db[app.events_collection].estimated_document_count()
        with tqdm(total=total, unit="commit", disable=not sys.stderr.isatty()) as bar:
            return await rebuilder.run(bar.update)


async def _dead_letters(settings: ProjectorSettings, action: str) -> None:
    async with clients(settings) as c:
        for part in c.served.parts:
            for topic in part.topics:
                dlq = dlq_topic(topic)
                bootstrap = settings.kafka_bootstrap_servers
                if action == "list":
                    letters = await list_dead_letters(bootstrap, dlq, part.app.registry)
                else:
                    letters = await replay_dead_letters(
                        bootstrap, dlq, c.served.group_id, part.app.registry
                    )
                for letter in letters:
                    print(("replayed " if action == "replay" else "") + letter.describe())
                print(f"{dlq}: {len(letters)} dead letter(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projector")
    parser.add_argument(
        "--read-models",
        help="comma-separated read models this process serves (default: TANDEM_READ_MODELS, "
        "else every read model of TANDEM_APPS)",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="consume and project (default)")
    dlq = sub.add_parser("dlq", help="dead letters")
    dlq.add_argument("action", choices=["list", "replay"])
    rb = sub.add_parser("rebuild", help="rebuild a read model from the event store")
    rb.add_argument("model", nargs="?", help="the read model; omitted: list the declared ones")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.read_models is not None:
        overrides["read_models"] = [n.strip() for n in args.read_models.split(",") if n.strip()]
    settings = ProjectorSettings(**overrides)
    configure_logging("projector", settings.log_level, settings.resolved_log_format)
    command = args.command or "run"
    try:
        if command == "run":
            _run_loop(run(settings))
        elif command == "dlq":
            _run_loop(_dead_letters(settings, args.action))
        else:
            return _rebuild_command(settings, args.model)
    except AppError as exc:
        print(f"projector: {exc}", file=sys.stderr)
        return 2
    return 0


def _rebuild_command(settings: ProjectorSettings, name: str | None) -> int:
    """Rebuild ``name``; without a name, or with one no fold read model has, list those that
    can be rebuilt (totals need no rebuild: they never read their source's collection)."""
    apps = settings.load_apps()
    names = [rm.name for app in apps for rm in app.read_models if rm.is_fold]
    if name in names:
        print(f"{name} now read from {_run_loop(rebuild(settings, name))}")
        return 0
    derived = {
        rm.name: app.source_of(rm).name for app in apps for rm in app.read_models if not rm.is_fold
    }
    if name is not None and name in derived:
        print(
            f"{name} is totals derived exactly once from the events of {derived[name]}; it "
            "needs no rebuild (a rebuild of its source leaves it exact)",
            file=sys.stderr,
        )
    elif name is not None:
        print(f"no read model {name!r}", file=sys.stderr)
    print("read models to rebuild: " + ", ".join(names), file=sys.stderr)
    return 2 if name is not None and name not in derived else 0


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
