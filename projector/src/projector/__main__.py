"""``python -m projector [run]``, ``dlq list|replay``, ``rebuild products``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

import uvicorn
from tandem.kafka import ensure_topics
from tandem.observability import configure_logging
from tandem_catalog.contract import dlq_topic

from projector.bootstrap import (
    ProjectorSettings,
    build_consumer,
    clients,
    kafka_consumer,
    kafka_producer,
)
from projector.dlq import list_dead_letters, replay_dead_letters
from projector.http import create_app
from projector.rebuild import Rebuilder

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
            settings.topics,
            partitions=settings.partitions,
            replication_factor=settings.topic_replication_factor,
        )
        consumer = kafka_consumer(settings)
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


async def rebuild(settings: ProjectorSettings) -> str:
    from tqdm import tqdm

    async with clients(settings) as c:
        total = await c.write_db["events"].estimated_document_count()
        rebuilder = Rebuilder(
            c.read_db,
            c.event_store(),
            c.projections(),
            page_size=settings.rebuild_page_size,
            settle_s=settings.rebuild_settle_s,
            catchup_margin=settings.rebuild_catchup_margin,
            redis=c.redis,
        )
        with tqdm(total=total, unit="commit", disable=not sys.stderr.isatty()) as bar:
            return await rebuilder.run(bar.update)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projector")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="consume and project (default)")
    dlq = sub.add_parser("dlq", help="dead letters")
    dlq.add_argument("action", choices=["list", "replay"])
    rb = sub.add_parser("rebuild", help="rebuild a read model from the event store")
    rb.add_argument("model", choices=["products"])
    args = parser.parse_args(argv)
    settings = ProjectorSettings()
    configure_logging("projector", settings.log_level, settings.resolved_log_format)
    command = args.command or "run"
    if command == "run":
        _run_loop(run(settings))
    elif command == "dlq":
        for topic in settings.topics:
            if args.action == "list":
                letters = _run_loop(
                    list_dead_letters(settings.kafka_bootstrap_servers, dlq_topic(topic))
                )
            else:
                letters = _run_loop(
                    replay_dead_letters(
                        settings.kafka_bootstrap_servers, dlq_topic(topic), settings.group_id
                    )
                )
            for letter in letters:
                print(("replayed " if args.action == "replay" else "") + letter.describe())
            print(f"{dlq_topic(topic)}: {len(letters)} dead letter(s)")
    else:
        print(f"products now read from {_run_loop(rebuild(settings))}")
    return 0


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
