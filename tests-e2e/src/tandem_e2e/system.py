"""The whole system under test: the e2e server stack plus the real service processes.

The services serve both apps (``TANDEM_APPS=tandem_catalog.app:app,tandem_orders.app:app``),
and the projectors run in two consumer groups, one per app's read models, as compose and the
kustomize base deploy them: ``catalog-projector-1/2`` serve ``products,category_stats`` and
``orders-projector-1/2`` serve ``orders,customer_totals`` (two members each, so a rebalance
has somewhere to go). :meth:`System.check` folds each app's event store with its own oracle
(:mod:`tandem_e2e.fold`, :mod:`tandem_e2e.fold_orders`).

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
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from tandem.app import App
from tandem.auth import issue_token
from tandem.events import DomainEvent
from tandem.runtime.contract import READ_MODEL_POINTERS
from tandem.settings import TandemSettings
from tandem_catalog.app import app as catalog_app
from tandem_orders.app import app as orders_app

from tandem_e2e.clients import CommandClient, OrderClient, QueryClient
from tandem_e2e.config import E2EConfig, free_port
from tandem_e2e.fold import Comparison, compare, fold_products
from tandem_e2e.fold_orders import compare_orders, fold_orders
from tandem_e2e.ledger import Ledger
from tandem_e2e.servers import ALL_SERVERS, ServerName, Servers
from tandem_e2e.services import ServiceProcess, run_cli

Doc = dict[str, Any]
APPS: dict[str, App] = {catalog_app.name: catalog_app, orders_app.name: orders_app}
"""The apps under test, by declaration name (the report's and the ledger's key)."""
PROJECTORS: dict[str, tuple[str, str]] = {
    name: (f"{name}-projector-1", f"{name}-projector-2") for name in APPS
}
"""Per app, the two members of the consumer group serving its read models."""
ALL_PROJECTORS = tuple(n for pair in PROJECTORS.values() for n in pair)
SERVICE_NAMES = ("command-service", "query-service", *ALL_PROJECTORS)
_KEEP_ENV = ("TANDEM_CACHE_DIR",)
_SCOPES = {name: (app.aggregates[0].scope, app.read_models[0].scope) for name, app in APPS.items()}


def read_models_of(app: App) -> str:
    """``TANDEM_READ_MODELS`` of the app's projector group: all its read models."""
    return ",".join(rm.name for rm in app.read_models)


class System:
    def __init__(self, config: E2EConfig) -> None:
        self.config = config
        self.servers = Servers(config)
        self.jwt_secret = f"e2e-{secrets.token_hex(24)}"
        self.write_db = "tandem_e2e_write"
        self.read_db = "tandem_e2e_read"
        self.topics = {name: app.aggregates[0].topic for name, app in APPS.items()}
        self.topic = self.topics["catalog"]
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
            TANDEM_APPS="tandem_catalog.app:app,tandem_orders.app:app",
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
                "TANDEM_RELAY_INTERVAL_S": "1", "TANDEM_RELAY_GRACE_S": "2",
                "TANDEM_MONGO_TIMEOUT_MS": "2000", "TANDEM_RETRY_BACKOFF_S": "0.5",
                "TANDEM_KAFKA_REQUEST_TIMEOUT_MS": "5000",
            }),
            ("query-service", "query_service", {}),
            *(
                (name, "projector", {"TANDEM_READ_MODELS": read_models_of(APPS[app])})
                for app, pair in PROJECTORS.items()
                for name in pair
            ),
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

    def projectors(self, app: str | None = None) -> Iterator[ServiceProcess]:
        names = PROJECTORS[app] if app is not None else ALL_PROJECTORS
        return (self.services[n] for n in names)

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

    def all_scopes(self) -> tuple[str, ...]:
        return tuple(scope for pair in _SCOPES.values() for scope in pair)

    def command_client(self, ledger: Ledger, name: str = "client") -> CommandClient:
        return CommandClient(self.command.base_url, self.token(_SCOPES["catalog"][0]), ledger, name)

    def order_client(self, ledger: Ledger, name: str = "orders") -> OrderClient:
        return OrderClient(self.command.base_url, self.token(_SCOPES["orders"][0]), ledger, name)

    def query_client(self, app: str = "catalog") -> QueryClient:
        return QueryClient(self.query.base_url, self.token(_SCOPES[app][1]), APPS[app])

    def read_token(self, app: str = "catalog") -> str:
        return self.token(_SCOPES[app][1])

    def ws_url_of(self, read_model: str) -> str:
        return f"ws://127.0.0.1:{self.query.port}/ws/{read_model}"

    @property
    def ws_url(self) -> str:
        return self.ws_url_of("products")

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

    async def store_events(self, app: str = "catalog") -> list[DomainEvent]:
        """Every event of one app's store, commit by commit in store order (per-aggregate
        ordered), decoded by the app's own registry (upcasters included)."""
        declared = APPS[app]
        commits = self.mongo[self.write_db][declared.events_collection].find(
            {}, sort=[("position", ASCENDING)]
        )
        events: list[DomainEvent] = []
        async for commit in commits:
            events.extend(declared.registry.deserialize(e) for e in commit["events"])
        return events

    async def active_collection(self, read_model: str) -> str:
        """Where readers read ``read_model`` now (a rebuild moves it: the pointer says where)."""
        pointer = await self.mongo[self.read_db][READ_MODEL_POINTERS].find_one({"_id": read_model})
        return str(pointer["active"]) if pointer and pointer.get("active") else read_model

    async def products_collection(self) -> str:
        return await self.active_collection("products")

    async def documents(self, read_model: str) -> list[Doc]:
        db = self.mongo[self.read_db]
        return [d async for d in db[await self.active_collection(read_model)].find({})]

    async def customer_totals(self) -> list[Doc]:
        """The stored integer counters of ``customer_totals`` in the API's row shape, without
        the app's ``present`` (the oracle must not borrow the app's code)."""
        rows = []
        for doc in await self.documents("customer_totals"):
            cents = int(doc.get("total_cents", 0))
            rows.append(
                {
                    "customer_id": str(doc["_id"]),
                    "submitted_orders": int(doc.get("submitted_orders", 0)),
                    "total": Decimal(cents) / 100,
                }
            )
        return rows

    async def check(self) -> dict[str, Comparison]:
        """Per app, its read models versus the fold of its event store, right now."""
        products, issues = fold_products(await self.store_events("catalog"))
        catalog = compare(
            products,
            await self.documents("products"),
            await self.documents("category_stats"),
            issues,
        )
        orders, order_issues = fold_orders(await self.store_events("orders"))
        order_docs = await self.documents("orders")
        ordered = compare_orders(orders, order_docs, await self.customer_totals(), order_issues)
        return {"catalog": catalog, "orders": ordered}

    async def store_versions(
        self, ids: Iterable[str], app: str = "catalog"
    ) -> dict[str, list[int]]:
        wanted = list(ids)
        found: dict[str, list[int]] = {i: [] for i in wanted}
        collection = self.mongo[self.write_db][APPS[app].events_collection]
        async for commit in collection.find({"aggregate_id": {"$in": wanted}}):
            for event in commit["events"]:
                found[commit["aggregate_id"]].append(int(event["version"]))
        return found
