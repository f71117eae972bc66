"""Scenarios of the whole system (the catalog and orders served together) under real faults;
each ends with ``scenario.finish()``: per app, read models = fold of the event store, nothing
lost, nothing double-applied, and at least a floor of accepted commands (a stack refusing
everything would lose nothing). The load scenarios drive both apps (``tandem_e2e.load``)."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import pytest
from tandem_e2e.converge import eventually
from tandem_e2e.dlq import read_topic
from tandem_e2e.inject import Injector
from tandem_e2e.ledger import Ledger
from tandem_e2e.load import CATEGORIES, floors, random_price, steady_load
from tandem_e2e.scenario import ScenarioRun
from tandem_e2e.system import APPS, PROJECTORS, System
from tandem_e2e.ws import WsWatcher

pytestmark = pytest.mark.e2e


def watcher(system: System, ids: list[str] | None = None) -> WsWatcher:
    return WsWatcher(system.ws_url, lambda: system.token("products:read"), ids=ids)


async def create_products(scenario: ScenarioRun, count: int, tag: str) -> list[str]:
    client = scenario.system.command_client(scenario.ledger, tag)
    rng = random.Random(scenario.system.config.seed)
    ids: list[str] = []
    try:
        for i in range(count):
            outcome = await client.create(
                f"{tag} {i}", random_price(rng), rng.choice(CATEGORIES), "seeded"
            )
            assert outcome.status == 201, outcome.body
            assert outcome.aggregate_id is not None
            ids.append(outcome.aggregate_id)
    finally:
        await client.aclose()
    return ids


async def progress(ledger: Ledger, count: int, timeout: float = 120) -> None:
    async def reached() -> bool:
        return ledger.sent >= count

    await eventually(reached, timeout=timeout, interval=0.05, what=f"{count} commands sent")


async def test_happy_path(scenario: ScenarioRun, system: System) -> None:
    ws = await watcher(system).start()
    client = system.command_client(scenario.ledger)
    query = system.query_client()
    try:
        created = await client.create("Happy lamp", Decimal("19.99"), "tools", "a lamp")
        assert created.status == 201, created.body
        assert created.version == 1
        assert created.headers.get("location", "").endswith(str(created.aggregate_id))
        pid = str(created.aggregate_id)

        read = await query.get(pid, min_version=1, wait_ms=5000)
        assert read.status_code == 200, read.text
        body = read.json()
        assert body["version"] == 1
        assert body["name"] == "Happy lamp"
        assert Decimal(str(body["price"])) == Decimal("19.99")
        assert read.headers["etag"] == '"1"'

        changed = await client.change_price(pid, Decimal("24.50"), 1)
        assert changed.status == 200, changed.body
        assert changed.version == 2
        read = await query.get(pid, min_version=2, wait_ms=5000)
        assert read.status_code == 200, read.text
        assert Decimal(str(read.json()["price"])) == Decimal("24.50")

        async def ws_saw_both() -> bool:
            return {(pid, 1), (pid, 2)} <= set(ws.keys())

        _, seconds = await eventually(ws_saw_both, timeout=15, what="WebSocket messages v1, v2")
        scenario.convergence.append(seconds)
        frames = [m for m in ws.changes() if m.get("id") == pid]
        assert [m["event_type"] for m in frames] == ["ProductCreated", "ProductPriceChanged"]

        # A version the read side cannot reach within wait_ms: the documented stale answer.
        stale = await query.get(pid, min_version=99, wait_ms=200)
        assert stale.status_code == 409, stale.text
        assert stale.headers.get("x-read-model-version") == "2"
    finally:
        await client.aclose()
        await query.aclose()
        await ws.stop()
    await scenario.finish(min_accepted={"catalog": 2})


async def test_happy_path_orders(scenario: ScenarioRun, system: System) -> None:
    """An order placed over HTTP is readable with ``min_version``, pushed on ``/ws/orders``
    and counted in its customer's totals once submitted, beside the catalog."""
    oid, customer = f"happy-{uuid.uuid4().hex[:10]}", f"happy-c-{uuid.uuid4().hex[:8]}"
    ws = await WsWatcher(
        system.ws_url_of("orders"), lambda: system.read_token("orders"), ids=[oid]
    ).start()
    orders = system.order_client(scenario.ledger)
    query = system.query_client("orders")
    try:
        placed = await orders.place(oid, customer, [("lamp", 2, Decimal("19.99"))])
        assert (placed.status, placed.body) == (201, {"id": oid, "version": 1}), placed.body
        added = await orders.add_line(oid, "bulb", 3, Decimal("1.50"), expected_version=1)
        assert (added.status, added.version) == (200, 2), added.body
        refused = await orders.transition(oid, "ship", expected_version=2)
        assert refused.status == 409, refused.body
        assert refused.body["error"]["code"] == "order_not_submitted"
        submitted = await orders.transition(oid, "submit", expected_version=2)
        assert (submitted.status, submitted.version) == (200, 3), submitted.body

        read = await query.get(oid, min_version=3, wait_ms=5000)
        assert read.status_code == 200, read.text
        body = read.json()
        assert (body["status"], body["version"], body["total"]) == ("submitted", 3, "44.48")
        assert read.headers["etag"] == '"3"'

        async def ws_saw_all() -> bool:
            return {(oid, 1), (oid, 2), (oid, 3)} <= set(ws.keys())

        _, seconds = await eventually(ws_saw_all, timeout=15, what="orders WebSocket v1..v3")
        scenario.convergence.append(seconds)
        frames = [m for m in ws.changes() if m.get("id") == oid]
        assert {m["read_model"] for m in frames} == {"orders"}
        assert [m["event_type"] for m in frames] == [
            "OrderPlaced",
            "OrderLineAdded",
            "OrderSubmitted",
        ]

        # customer_totals is its own read model: it follows the order, with no min_version.
        want = [{"customer_id": customer, "submitted_orders": 1, "total": "44.48"}]

        async def counted() -> bool:
            rows = (await query.stats()).json()["items"]
            return [row for row in rows if row["customer_id"] == customer] == want

        await eventually(counted, timeout=15, what="the submitted order in customer totals")
    finally:
        await orders.aclose()
        await query.aclose()
        await ws.stop()
    await scenario.finish(min_accepted={"orders": 3})


async def test_conflict_and_idempotency(scenario: ScenarioRun, system: System) -> None:
    client = system.command_client(scenario.ledger)
    try:
        created = await client.create("Conflicted", Decimal("10.00"), "books")
        pid = str(created.aggregate_id)
        first = await client.update(pid, 1, name="first writer")
        second = await client.update(pid, 1, name="second writer")
        assert first.status == 200
        assert first.version == 2
        assert second.status == 409, second.body
        assert second.body["error"]["details"]["current_version"] == 2

        # 20 concurrent writers on the same expected version: exactly one wins.
        racers = await asyncio.gather(
            *(client.change_price(pid, Decimal(f"{11 + i}.00"), 2) for i in range(20))
        )
        statuses = sorted(r.status or 0 for r in racers)
        assert statuses.count(200) == 1, statuses
        assert statuses.count(409) == 19, statuses

        key = f"e2e-{uuid.uuid4()}"
        once = await client.change_price(pid, Decimal("42.00"), 3, idempotency_key=key)
        assert once.status == 200, once.body
        assert once.version == 4
        again = await client.change_price(
            pid, Decimal("42.00"), 3, idempotency_key=key, replay=True
        )
        assert again.status == 200
        assert again.body == once.body
        other = await client.change_price(
            pid, Decimal("43.00"), 3, idempotency_key=key, replay=True
        )
        assert other.status == 422, other.body

        create_key = f"e2e-{uuid.uuid4()}"
        c1 = await client.create("Idem", Decimal("5.00"), "games", idempotency_key=create_key)
        c2 = await client.create(
            "Idem", Decimal("5.00"), "games", idempotency_key=create_key, replay=True
        )
        assert c1.status == 201
        assert c2.status == 201
        assert c1.body == c2.body
        versions = await system.store_versions([pid, str(c1.aggregate_id)])
        assert sorted(versions[pid]) == [1, 2, 3, 4]
        assert versions[str(c1.aggregate_id)] == [1]
    finally:
        await client.aclose()
    await scenario.finish(min_accepted={"catalog": 5})


async def test_projector_sigkill_under_load(scenario: ScenarioRun, system: System) -> None:
    profile = system.config.profile
    rng = random.Random(system.config.seed + 1)
    total = profile.commands_per_scenario * 2
    load = asyncio.create_task(
        steady_load(
            system,
            scenario.ledger,
            clients=profile.clients,
            total=total,
            seed=rng.randrange(10**6),
            tag="kill",
        )
    )
    try:
        for round_ in range(profile.kill_rounds):
            await progress(
                scenario.ledger, int(total * (round_ + rng.random()) / (profile.kill_rounds + 1))
            )
            # One member of each app's projector group, at the same moment.
            victims = [system.service(rng.choice(pair)) for pair in PROJECTORS.values()]
            for victim in victims:
                victim.kill()
            scenario.fault("SIGKILL " + " + ".join(v.name for v in victims))
            # Never past the load's total: a kill late in the run would wait for commands
            # that are never sent.
            await progress(scenario.ledger, min(total, scenario.ledger.sent + rng.randrange(5, 30)))
            for victim in victims:
                await asyncio.to_thread(victim.start)  # off the loop: the load keeps running
            for victim in victims:
                await asyncio.to_thread(victim.wait_ready)
        await load
    finally:
        load.cancel()
    await scenario.finish(min_accepted=floors(total))


async def test_rebalance_one_of_two_projectors_stopped(
    scenario: ScenarioRun, system: System
) -> None:
    profile = system.config.profile
    total = profile.commands_per_scenario * 2
    load = asyncio.create_task(
        steady_load(
            system,
            scenario.ledger,
            clients=profile.clients,
            total=total,
            seed=system.config.seed + 2,
            tag="rebalance",
        )
    )
    try:
        await progress(scenario.ledger, total // 4)
        second = [pair[1] for pair in PROJECTORS.values()]
        for name in second:
            await asyncio.to_thread(system.service(name).stop)
        scenario.fault(f"SIGTERM {' + '.join(second)} (partitions move to the other members)")
        await progress(scenario.ledger, total * 3 // 4)
        await asyncio.to_thread(system.start_services, *second)
        scenario.fault(f"{' + '.join(second)} back (rebalance)")
        await load
    finally:
        load.cancel()
    await scenario.finish(min_accepted=floors(total))


async def test_kafka_down_during_writes(scenario: ScenarioRun, system: System) -> None:
    profile = system.config.profile
    n = profile.commands_per_scenario // 2
    seed = system.config.seed + 3
    await steady_load(system, scenario.ledger, clients=2, total=n, seed=seed, tag="kafka-a")
    system.stop_server("kafka")
    scenario.fault("Kafka stopped")
    outage = Ledger()
    try:
        await steady_load(
            system, outage, clients=2, total=n, seed=seed + 1, tag="kafka-b", pace_s=0
        )
    finally:
        scenario.ledger.extend(outage.records)
        system.start_server("kafka")
        scenario.fault("Kafka restarted")
    assert outage.count("accepted") == outage.sent, outage.status_counts()
    await steady_load(system, scenario.ledger, clients=2, total=n, seed=seed + 2, tag="kafka-c")
    await scenario.finish(min_accepted=floors(3 * n, 0.75))


async def test_mongo_down_then_recovers(scenario: ScenarioRun, system: System) -> None:
    ids = await create_products(scenario, 5, "mongo")
    client = system.command_client(scenario.ledger, "mongo")
    try:
        system.stop_server("mongo")
        scenario.fault("MongoDB-wire stopped")
        try:
            during = [
                await client.create(
                    "never", Decimal("1.00"), "books", product_id=f"never-{uuid.uuid4().hex[:10]}"
                ),
                await client.change_price(ids[0], Decimal("2.00"), 1),
                await client.update(ids[1], None, name="never"),
                await client.discontinue(ids[2], 1),
            ]
        finally:
            system.start_server("mongo")
            scenario.fault("MongoDB-wire restarted")
        for outcome in during:
            assert outcome.status == 503, (outcome.status, outcome.body)
            assert "retry-after" in outcome.headers
            assert isinstance(outcome.body, dict)
            assert outcome.body["error"]["code"]

        async def command_ready() -> bool:
            return system.command.ready()

        _, seconds = await eventually(command_ready, timeout=60, what="command-service ready")
        scenario.convergence.append(seconds)
        after = await client.change_price(ids[0], Decimal("3.00"), 1)
        assert after.status == 200, after.body
        assert system.command.starts == 1, "the command-service must recover without a restart"
    finally:
        await client.aclose()
    await steady_load(
        system, scenario.ledger, clients=2, total=20, seed=system.config.seed + 4, tag="mongo-after"
    )
    await scenario.finish(min_accepted={"catalog": 12, "orders": 1})
    versions = await system.store_versions(
        [
            r.aggregate_id
            for r in scenario.ledger.records
            if r.aggregate_id and r.aggregate_id.startswith("never-")
        ]
    )
    assert all(not v for v in versions.values()), f"half-written: {versions}"


async def test_redis_down_reads_served_and_ws_recovers(
    scenario: ScenarioRun, system: System
) -> None:
    ids = await create_products(scenario, 6, "redis")
    await scenario.converge()
    ws = await watcher(system, ids).start()
    client = system.command_client(scenario.ledger, "redis")
    query = system.query_client()
    try:
        system.stop_server("redis")
        scenario.fault("Redis stopped")
        try:
            for pid in ids:
                read = await query.get(pid)
                assert read.status_code == 200, read.text
            for i, pid in enumerate(ids):
                changed = await client.change_price(pid, Decimal(f"{50 + i}.00"), 1)
                assert changed.status == 200, changed.body
            search = await query.search(category=CATEGORIES[0])
            assert search.status_code == 200, search.text
        finally:
            system.start_server("redis")
            scenario.fault("Redis restarted")

        async def ws_caught_up() -> bool:
            seen = ws.versions()
            return all(seen.get(pid, 0) >= 2 for pid in ids)

        _, seconds = await eventually(ws_caught_up, timeout=60, what="WebSocket client caught up")
        scenario.convergence.append(seconds)
        for pid in ids:
            read = await query.get(pid, min_version=2, wait_ms=5000)
            assert read.status_code == 200
            assert read.json()["version"] == 2
    finally:
        await client.aclose()
        await query.aclose()
        await ws.stop()
    await scenario.finish(min_accepted={"catalog": 12})


async def test_poison_message_dead_lettered(scenario: ScenarioRun, system: System) -> None:
    """Poison on both apps' topics: each lands in its own app's DLQ, and the same
    aggregates' later events (same partitions) still apply."""
    ids = await create_products(scenario, 3, "poison")
    orders = system.order_client(scenario.ledger, "poison")
    order_ids = [f"poison-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    marker = uuid.uuid4().hex
    try:
        for oid in order_ids:
            placed = await orders.place(oid, "poison-c", [("p-1", 1, Decimal("3.00"))])
            assert placed.status == 201, placed.body
        injector = Injector(system.config.kafka_bootstrap, system.topic)
        await injector.send_raw(
            ids[0].encode(), f"not json {marker}".encode(), [("ce_type", b"ProductCreated")]
        )
        await injector.send_raw(
            ids[1].encode(),
            f'{{"event_type": "ProductTeleported", "marker": "{marker}"}}'.encode(),
            [("ce_type", b"ProductTeleported")],
        )
        order_injector = Injector(system.config.kafka_bootstrap, system.topics["orders"])
        await order_injector.send_raw(
            order_ids[0].encode(), f"not json {marker}".encode(), [("ce_type", b"OrderPlaced")]
        )
        await order_injector.send_raw(
            order_ids[1].encode(),
            f'{{"event_type": "OrderTeleported", "marker": "{marker}"}}'.encode(),
            [("ce_type", b"OrderTeleported")],
        )
        scenario.fault("2 poison messages per app injected")
        client = system.command_client(scenario.ledger, "poison")
        try:
            for pid in ids:
                assert (await client.change_price(pid, Decimal("77.00"), 1)).status == 200
        finally:
            await client.aclose()
        for oid in order_ids:
            added = await orders.add_line(oid, "p-2", 2, Decimal("4.00"), 1)
            assert added.status == 200, added.body
    finally:
        await orders.aclose()

    for app in APPS.values():
        dlq = app.aggregates[0].dlq_topic

        async def dead_lettered(dlq: str = dlq) -> bool:
            messages = await read_topic(system.config.kafka_bootstrap, dlq, 1.0)
            return sum(marker.encode() in value for value, _ in messages) >= 2

        await eventually(dead_lettered, timeout=60, interval=1, what=f"poison in {dlq}")
    code, out = system.cli("projector", "dlq", "list")
    assert code == 0, out
    await scenario.finish(min_accepted={"catalog": 6, "orders": 4})


async def test_duplicate_and_reordered_events(scenario: ScenarioRun, system: System) -> None:
    ids = await create_products(scenario, 4, "dupes")
    await steady_load(
        system, scenario.ledger, clients=1, total=30, seed=system.config.seed + 5, tag="dupes"
    )
    await scenario.converge()
    rng = random.Random(system.config.seed + 6)
    injected = 0
    for app in APPS:
        mine = scenario.ledger.ids(app) | (set(ids) if app == "catalog" else set())
        events = [e for e in await system.store_events(app) if e.aggregate_id in mine]
        shuffled = events[:]
        rng.shuffle(shuffled)
        injector = Injector(system.config.kafka_bootstrap, system.topics[app])
        await injector.send_events(events + list(reversed(events)) + shuffled)
        injected += len(events) * 3
    scenario.fault(f"{injected} duplicate/reordered events injected (both apps)")
    # Later real commands must still apply on top of the duplicates.
    await steady_load(
        system, scenario.ledger, clients=1, total=20, seed=system.config.seed + 7, tag="dupes-after"
    )
    await scenario.finish(min_accepted={"catalog": 20, "orders": 4})


async def test_rebuild_during_load(scenario: ScenarioRun, system: System) -> None:
    """``projector rebuild products``, then ``rebuild orders``, while both apps take writes."""
    profile = system.config.profile
    total = profile.commands_per_scenario
    load = asyncio.create_task(
        steady_load(
            system,
            scenario.ledger,
            clients=2,
            total=total,
            seed=system.config.seed + 8,
            tag="rebuild",
        )
    )
    try:
        for name, share in (("products", 4), ("orders", 2)):
            await progress(scenario.ledger, total // share)
            before = await system.active_collection(name)
            code, out = await asyncio.to_thread(system.cli, "projector", "rebuild", name)
            scenario.fault(f"rebuild {name}")
            assert code == 0, out
            after = await system.active_collection(name)
            assert after != before, f"rebuild did not switch {name}'s collection ({before})"
        await load
    finally:
        load.cancel()
    await scenario.finish(min_accepted=floors(total))
