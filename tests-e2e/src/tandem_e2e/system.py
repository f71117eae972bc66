"""The whole system under test: the e2e server stack plus the real service processes.

One :class:`System` per pytest session. It resets its own stack directory at start (a fresh
Kafka log, MongoDB-wire data and Redis), so every session folds a store it fully owns, and it
tears down in :meth:`close` (called by a session finalizer and, as a last resort, ``atexit``).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from tandem.auth import issue_token
from tandem.events import DomainEvent
from tandem.settings import TandemSettings
from tandem_catalog.contract import (
    CATEGORY_STATS_READ_MODEL,
    PRODUCT_TOPIC,
    PRODUCTS_READ_MODEL,
    READ_MODEL_POINTERS,
)
from tandem_catalog.events import CATALOG_REGISTRY

from tandem_e2e.clients import CommandClient, QueryClient
from tandem_e2e.config import E2EConfig, free_port
from tandem_e2e.fold import Comparison, compare, fold_products
from tandem_e2e.ledger import Ledger
from tandem_e2e.servers import ALL_SERVERS, ServerName, Servers
from tandem_e2e.services import ServiceProcess, run_cli

Doc = dict[str, Any]
PROJECTORS = ("projector-1", "projector-2")
SERVICE_NAMES = ("command-service", "query-service", *PROJECTORS)
_KEEP_ENV = ("TANDEM_CACHE_DIR",)


class System:
    def __init__(self, config: E2EConfig) -> None:
        self.config = config
        self.servers = Servers(config)
        self.jwt_secret = f"e2e-{secrets.token_hex(24)}"
        self.write_db = "tandem_e2e_write"
        self.read_db = "tandem_e2e_read"
        self.topic = PRODUCT_TOPIC
        self.partitions = 6
        self.services: dict[str, ServiceProcess] = {}
        self._mongo: AsyncMongoClient[Doc] | None = None
        self.settings = TandemSettings(
            environment="test", jwt_secret=self.jwt_secret, mongo_write_db=self.write_db,
            mongo_read_db=self.read_db,
        )  # fmt: skip
        self._closed = False
        atexit.register(self.close)

    # --- environment --------------------------------------------------------------------

    def env(self, port: int | None = None, **extra: str) -> dict[str, str]:
        """The environment of a service process: ours only, none of the caller's TANDEM_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") or k in _KEEP_ENV}
        env.update(
            TANDEM_ENVIRONMENT="test",
            TANDEM_APPS="tandem_catalog.app:app",
            TANDEM_KAFKA_BOOTSTRAP_SERVERS=self.config.kafka_bootstrap,
            TANDEM_MONGO_URL=self.config.mongo_url,
            TANDEM_MONGO_WRITE_DB=self.write_db,
            TANDEM_MONGO_READ_DB=self.read_db,
            TANDEM_REDIS_URL=self.config.redis_url,
            TANDEM_JWT_SECRET=self.jwt_secret,
            TANDEM_PARTITIONS=str(self.partitions),
            TANDEM_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        if port is not None:
            env["TANDEM_HTTP_PORT"] = str(port)
        env.update(extra)
        return env

    def _make_services(self) -> None:
        logs = self.config.logs_dir
        specs: list[tuple[str, str, dict[str, str]]] = [
            ("command-service", "command_service", {
                # Short relay timings so an outage heals within a scenario's deadline.
                "TANDEM_RELAY_INTERVAL_SECONDS": "1", "TANDEM_RELAY_GRACE_SECONDS": "2",
                "TANDEM_MONGO_TIMEOUT_MS": "2000", "TANDEM_RETRY_BACKOFF_SECONDS": "0.5",
                "TANDEM_KAFKA_REQUEST_TIMEOUT_MS": "5000",
            }),
            ("query-service", "query_service", {}),
            *((name, "projector", {}) for name in PROJECTORS),
        ]  # fmt: skip
        for name, module, extra in specs:
            port = free_port()
            self.services[name] = ServiceProcess(
                name, module, port, self.env(port, **extra), logs, ready_path="/readyz"
            )

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        for old in self.config.logs_dir.glob("*.log"):
            old.unlink()
        # A fresh stack: the store this session folds must hold only this session's events.
        self.servers.down()
        shutil.rmtree(self.config.stack_dir, ignore_errors=True)
        self.servers.up()
        self._make_services()
        # Debugging aid: TANDEM_E2E_ONLY=command-service,query-service starts only those.
        only = [n for n in os.environ.get("TANDEM_E2E_ONLY", "").split(",") if n]
        self.start_services(*(only or SERVICE_NAMES))

    def start_services(self, *names: str, timeout: float = 120) -> None:
        for name in names:
            self.services[name].start()
        for name in names:
            self.services[name].wait_ready(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for service in self.services.values():
            service.stop(grace=10)
        self.copy_server_logs()
        with suppress(Exception):
            self.servers.down()

    def copy_server_logs(self) -> None:
        for name in ALL_SERVERS:
            src = self.config.stack_dir / f"{name}.log"
            if src.exists():
                with suppress(OSError):
                    shutil.copy(src, self.config.logs_dir / f"server-{name}.log")

    # --- faults -------------------------------------------------------------------------

    def stop_server(self, name: ServerName) -> None:
        self.servers.down(name)

    def kill_server(self, name: ServerName) -> None:
        self.servers.kill(name)

    def start_server(self, name: ServerName) -> None:
        self.servers.up(name)

    def service(self, name: str) -> ServiceProcess:
        return self.services[name]

    @property
    def command(self) -> ServiceProcess:
        return self.services["command-service"]

    @property
    def query(self) -> ServiceProcess:
        return self.services["query-service"]

    def projectors(self) -> Iterator[ServiceProcess]:
        return (self.services[n] for n in PROJECTORS)

    def ensure_all_running(self) -> None:
        """Bring back anything a scenario left down (servers first, then services)."""
        status = self.servers.status()
        down = [n for n in ALL_SERVERS if status.get(n) != "ready"]
        if down:
            self.servers.up(*down)
        stopped = [n for n, s in self.services.items() if s.starts and not s.running()]
        if stopped:
            self.start_services(*stopped)

    def cli(self, module: str, *args: str) -> tuple[int, str]:
        proc = run_cli(module, list(args), self.env())
        return proc.returncode, proc.stdout + proc.stderr

    # --- clients ------------------------------------------------------------------------

    def token(self, *scopes: str, ttl: int = 3600) -> str:
        return issue_token(self.settings, "e2e", scopes or ("products:write",), ttl)

    def command_client(self, ledger: Ledger, name: str = "client") -> CommandClient:
        return CommandClient(self.command.base_url, self.token("products:write"), ledger, name)

    def query_client(self) -> QueryClient:
        return QueryClient(self.query.base_url, self.token("products:read"))

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.query.port}/ws/products"

    # --- the databases ------------------------------------------------------------------

    @property
    def mongo(self) -> AsyncMongoClient[Doc]:
        if self._mongo is None:
            self._mongo = AsyncMongoClient(
                self.config.mongo_url,
                serverSelectionTimeoutMS=3000,
                connectTimeoutMS=2000,
                socketTimeoutMS=20000,
                tz_aware=True,
            )
        return self._mongo

    async def close_mongo(self) -> None:
        if self._mongo is not None:
            await self._mongo.close()
            self._mongo = None

    async def store_events(self) -> list[DomainEvent]:
        """Every event in the store, commit by commit in store order (per-aggregate ordered)."""
        commits = self.mongo[self.write_db]["events"].find({}, sort=[("position", ASCENDING)])
        events: list[DomainEvent] = []
        async for commit in commits:
            events.extend(CATALOG_REGISTRY.deserialize(e) for e in commit["events"])
        return events

    async def products_collection(self) -> str:
        pointer = await self.mongo[self.read_db][READ_MODEL_POINTERS].find_one(
            {"_id": PRODUCTS_READ_MODEL}
        )
        return str(pointer["active"]) if pointer and pointer.get("active") else PRODUCTS_READ_MODEL

    async def read_models(self) -> tuple[list[Doc], list[Doc]]:
        db = self.mongo[self.read_db]
        products = [d async for d in db[await self.products_collection()].find({})]
        stats = [d async for d in db[CATEGORY_STATS_READ_MODEL].find({})]
        return products, stats

    async def check(self) -> Comparison:
        """Read models versus the fold of the event store, right now."""
        events = await self.store_events()
        expected, issues = fold_products(events)
        products, stats = await self.read_models()
        return compare(expected, products, stats, issues)

    async def store_versions(self, ids: Iterable[str]) -> dict[str, list[int]]:
        wanted = list(ids)
        found: dict[str, list[int]] = {i: [] for i in wanted}
        cursor = self.mongo[self.write_db]["events"].find({"aggregate_id": {"$in": wanted}})
        async for commit in cursor:
            for event in commit["events"]:
                found[commit["aggregate_id"]].append(int(event["version"]))
        return found
