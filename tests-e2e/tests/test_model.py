"""Model-based random testing: seeded command sequences from concurrent clients of both apps,
under the same random faults.

Replay a failure with ``TANDEM_E2E_SEED=<seed>`` (the seed is in the report header, the
failure message and the reliability report). Catalog clients share one pool of products, so
their commands race: stale ``If-Match`` versions get 409s, which the model expects. Order
clients each own their orders and send legal and illegal commands on purpose (ship an open
order, add a line after submission, submit an empty order, a stale ``If-Match``); the
orders model (:class:`~tandem_e2e.model.OrderState`) predicts each answer, 2xx or 409.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import pytest
from tandem_e2e.clients import CommandClient, OrderClient, Outcome
from tandem_e2e.converge import eventually
from tandem_e2e.inject import Injector
from tandem_e2e.load import CATEGORIES, random_price
from tandem_e2e.model import Model, OrderModel, OrderState, differences
from tandem_e2e.scenario import ScenarioRun
from tandem_e2e.system import APPS, PROJECTORS, System
from tandem_e2e.ws import WsWatcher

pytestmark = pytest.mark.e2e

FAULTS = (
    "kill-projector",
    "stop-projector",
    "kafka",
    "redis",
    "mongo",
    "duplicates",
    "poison",
    "rebuild",
)


async def inject_fault(
    kind: str, system: System, rng: random.Random, pools: dict[str, list[str]]
) -> str:
    if kind == "kill-projector":
        victims = [system.service(rng.choice(pair)) for pair in PROJECTORS.values()]
        for victim in victims:
            victim.kill()
        for victim in victims:
            await asyncio.to_thread(victim.start)
        for victim in victims:
            await asyncio.to_thread(victim.wait_ready)
        return f"SIGKILL {' + '.join(v.name for v in victims)} + restart"
    if kind == "stop-projector":
        victims = [system.service(rng.choice(pair)) for pair in PROJECTORS.values()]
        await asyncio.gather(*(asyncio.to_thread(v.restart) for v in victims))
        return f"SIGTERM {' + '.join(v.name for v in victims)} + restart"
    if kind == "duplicates":
        sent = 0
        for app in APPS:
            events = (await system.store_events(app))[-50:]
            rng.shuffle(events)
            await Injector(system.config.kafka_bootstrap, system.topics[app]).send_events(
                events * 2
            )
            sent += len(events) * 2
        return f"{sent} duplicate/shuffled events injected (both apps)"
    if kind == "poison":
        # Undecodable bytes and an unknown type under an aggregate's key, on both apps'
        # topics: dead-lettered, and that aggregate's later events (same partition) must
        # still apply.
        for app, first in (("catalog", "Product"), ("orders", "Order")):
            pool = pools[app]
            key = rng.choice(pool).encode() if pool else b"model-poison"
            injector = Injector(system.config.kafka_bootstrap, system.topics[app])
            await injector.send_raw(key, b"\xff not json", [("ce_type", f"{first}Placed".encode())])
            await injector.send_raw(
                key,
                f'{{"event_type": "{first}Teleported"}}'.encode(),
                [("ce_type", f"{first}Teleported".encode())],
            )
        return "2 poison messages per app injected"
    if kind == "rebuild":
        name = rng.choice(["products", "orders"])
        code, out = await asyncio.to_thread(system.cli, "projector", "rebuild", name)
        assert code == 0, out
        return f"rebuild {name}"
    server = {"kafka": "kafka", "redis": "redis", "mongo": "mongo"}[kind]
    how = rng.choice(["stopped", "SIGKILLed"])
    stop = system.stop_server if how == "stopped" else system.kill_server
    await asyncio.to_thread(stop, server)  # type: ignore[arg-type]
    await asyncio.sleep(rng.uniform(0.5, 2.0))  # outage length: the fault itself, not a wait
    await asyncio.to_thread(system.start_server, server)  # type: ignore[arg-type]
    return f"{server} {how} and restarted"


async def test_model_based_random_commands(scenario: ScenarioRun, system: System) -> None:
    seed = system.config.seed
    profile = system.config.profile
    scenario.note(f"seed {seed}")
    print(f"model-based test seed: {seed} (replay: TANDEM_E2E_SEED={seed})")
    model = Model()
    orders = OrderModel()
    problems: list[str] = []
    order_problems: list[str] = []
    pool: list[str] = []
    pools = {"catalog": pool, "orders": list[str]()}
    customers = {f"model-{seed}-c{k}" for k in range(3)}
    ws = await WsWatcher(system.ws_url, lambda: system.read_token("catalog")).start()
    order_ws = await WsWatcher(
        system.ws_url_of("orders"), lambda: system.read_token("orders")
    ).start()
    steps_left = [profile.model_steps]
    order_steps_left = [profile.model_steps // 2]

    async def order_loop(index: int) -> None:
        crng = random.Random(seed * 104729 + index)
        client = system.order_client(scenario.ledger, f"model-orders-{index}")
        mine: dict[str, OrderState] = {}
        try:
            while order_steps_left[0] > 0:
                order_steps_left[0] -= 1
                problem = await order_step(client, crng, mine, orders, sorted(customers), pools)
                if problem:
                    order_problems.append(problem)
        finally:
            await client.aclose()

    async def client_loop(index: int) -> None:
        crng = random.Random(seed * 7919 + index)
        client = system.command_client(scenario.ledger, f"model-{index}")
        try:
            while steps_left[0] > 0:
                steps_left[0] -= 1
                await one_step(client, crng)
        finally:
            await client.aclose()

    async def one_step(client: CommandClient, crng: random.Random) -> None:
        if not pool or crng.random() < 0.2:
            effect: dict[str, Any] = {
                "name": f"model {crng.randrange(10**6)}",
                "description": "",
                "price": random_price(crng),
                "category": crng.choice(CATEGORIES),
                "status": "active",
            }
            outcome = await client.create(
                effect["name"], effect["price"], effect["category"], effect["description"]
            )
            if outcome.ok:
                pool.append(str(outcome.aggregate_id))
            record(outcome, effect)
            return
        pid = crng.choice(pool)
        known = model.version(pid)
        # Mostly the newest version this process knows, sometimes stale, sometimes unchecked.
        expected = crng.choice([known, known, known, max(known - 1, 1), None])
        roll = crng.random()
        if roll < 0.45:
            price = random_price(crng)
            outcome = await client.change_price(pid, price, expected)
            effect = {"price": price}
        elif roll < 0.9:
            effect = crng.choice(
                [
                    {"name": f"renamed {crng.randrange(10**6)}"},
                    {"category": crng.choice(CATEGORIES)},
                    {"description": f"d{crng.randrange(10**6)}"},
                ]
            )
            outcome = await client.update(pid, expected, **effect)
        else:
            outcome = await client.discontinue(pid, expected)
            effect = {"status": "discontinued"}
        record(outcome, effect)

    def record(outcome: Outcome, effect: dict[str, Any]) -> None:
        if outcome.status is None and outcome.aggregate_id:
            model.uncertain.add(outcome.aggregate_id)
        if outcome.ok and outcome.aggregate_id and outcome.version:
            problems.extend(model.accept(outcome.aggregate_id, outcome.version, effect))

    async def fault_loop() -> None:
        frng = random.Random(seed + 99)
        marks = sorted(frng.sample(range(10, profile.model_steps - 10), profile.model_faults))
        for mark in marks:

            async def reached(mark: int = mark) -> bool:
                return scenario.ledger.sent >= mark

            await eventually(reached, timeout=300, interval=0.05, what=f"step {mark}")
            kind = frng.choice(FAULTS)
            scenario.fault(await inject_fault(kind, system, frng, pools))

    # Earlier tests (the API fuzzer among them) leave products in the same read models: the
    # model predicts the change of the category stats, not their totals.
    baseline = await _category_totals(system)
    try:
        await asyncio.gather(
            fault_loop(),
            *(client_loop(i) for i in range(profile.model_clients)),
            *(order_loop(i) for i in range(max(1, profile.model_clients - 1))),
        )
        await scenario.converge()
        problems.extend(model.gaps())
        order_problems.extend(await check_orders(system, orders, customers))
        await orders_ws_converged(order_ws, orders, scenario.row.faults)

        # Every reader agrees with the model: the query API per product and per category.
        query = system.query_client()
        try:
            for pid in model.certain_ids():
                read = await query.get(pid, min_version=model.version(pid), wait_ms=5000)
                assert read.status_code == 200, (pid, read.status_code, read.text)
                diff = differences(model.state(pid), read.json())
                if diff:
                    problems.append(f"{pid}: (read, model) {diff}")
        finally:
            await query.aclose()
        if not model.uncertain:
            totals = await _category_totals(system)
            got = {}
            for category, (count, price_sum) in totals.items():
                before = baseline.get(category, (0, Decimal("0.00")))
                if (count, price_sum) != before:
                    got[category] = (count - before[0], price_sum - before[1])
            want = model.category_stats()
            if got != want:
                problems.append(f"category stats (api, model): {got} != {want}")

        # The WebSocket stream reaches every product's final version, never beyond it.
        targets = {pid: model.version(pid) for pid in model.certain_ids()}

        async def ws_converged() -> bool:
            seen = ws.versions()
            return all(seen.get(pid, 0) >= v for pid, v in targets.items())

        try:
            await eventually(ws_converged, timeout=20, what="WebSocket stream at final versions")
        except AssertionError:
            if not any("redis" in f for f in scenario.row.faults):
                raise
            # Notices published while Redis was down are gone (at-most-once pub/sub); the
            # protocol's answer is a resync for the ids the client cares about.
            await ws.resync(dict.fromkeys(targets, 0))
            await eventually(ws_converged, timeout=30, what="WebSocket stream after resync")
        beyond = {pid: v for pid, v in ws.versions().items() if pid in targets and v > targets[pid]}
        if beyond:
            problems.append(f"WebSocket versions beyond the model: {beyond}")
    finally:
        await ws.stop()
        await order_ws.stop()
    for problem in problems:
        if "twice" in problem:
            scenario.double(problem)
        else:
            scenario.lost(problem)
    for problem in order_problems:
        scenario.lost(problem, app="orders")
    # Clients race on shared products, so stale versions get 409s; most commands still land.
    # About half the order commands are legal on purpose.
    await scenario.finish(
        min_accepted={"catalog": profile.model_steps // 3, "orders": profile.model_steps // 8}
    )
    assert not problems, f"seed {seed}: {problems[:10]}"
    assert not order_problems, f"seed {seed}: {order_problems[:10]}"


async def _category_totals(system: System) -> dict[str, tuple[int, Decimal]]:
    query = system.query_client()
    try:
        stats = (await query.stats()).json()
    finally:
        await query.aclose()
    return {
        s["category"]: (s["active_count"], Decimal(str(s["price_sum"])).quantize(Decimal("0.01")))
        for s in stats["items"]
    }


ORDER_KINDS = ("add_line", "remove_line", "submit", "ship", "cancel")


async def order_step(
    client: OrderClient,
    rng: random.Random,
    mine: dict[str, OrderState],
    model: OrderModel,
    customers: list[str],
    pools: dict[str, list[str]],
) -> str | None:
    """One command on an order this client owns, legal or not; the model predicts the answer.
    Returns a problem when the answer differs from the prediction."""
    certain = [oid for oid in mine if oid not in model.uncertain]
    if not certain or rng.random() < 0.2:
        oid = f"model-{client.name}-{rng.randrange(16**10):010x}"
        empty = rng.random() < 0.05
        lines = {} if empty else {f"p-{rng.randrange(20)}": (rng.randint(1, 3), random_price(rng))}
        customer = rng.choice(customers)
        outcome = await client.place(oid, customer, [(p, q, u) for p, (q, u) in lines.items()])
        if outcome.status is None:
            model.uncertain.add(oid)
            mine[oid] = model.orders[oid] = OrderState(customer, lines)
            return None
        expected = 422 if empty else 201
        if outcome.status == 503:
            return None
        if outcome.ok:
            mine[oid] = model.orders[oid] = OrderState(customer, lines)
            pools["orders"].append(oid)
        if outcome.status != expected:
            return f"place {oid}: {outcome.status}, the model expects {expected} ({outcome.body})"
        return None
    oid = rng.choice(certain)
    order = mine[oid]
    kind = rng.choice(ORDER_KINDS)
    stale = rng.random() < 0.1 and order.version > 1
    version = order.version - 1 if stale else order.version
    price = random_price(rng)
    quantity = rng.randint(1, 3)
    if kind == "add_line":
        # Sometimes a product already on the order (a 409 while open).
        product = rng.choice([*order.lines, f"p-{rng.randrange(20, 40)}"])
        outcome = await client.add_line(oid, product, quantity, price, version)
    elif kind == "remove_line":
        product = rng.choice([*order.lines, "p-none"])
        outcome = await client.remove_line(oid, product, version)
    else:
        product = ""
        outcome = await client.transition(oid, kind, version)
    if outcome.status is None:
        model.uncertain.add(oid)
        return None
    if outcome.status == 503:
        return None
    allowed = not stale and order.allows(kind, product)
    expected = 200 if allowed else 409
    if outcome.status != expected:
        return (
            f"{kind} {oid} ({order.status}, v{order.version}, If-Match {version}): "
            f"{outcome.status}, the model expects {expected} ({outcome.body})"
        )
    if outcome.ok:
        order.apply(kind, product, quantity, price)
        if outcome.version != order.version:
            return f"{kind} {oid}: answered v{outcome.version}, the model is at v{order.version}"
    return None


async def check_orders(system: System, model: OrderModel, customers: set[str]) -> list[str]:
    """The query API agrees with the model: every certain order, and the model's customers'
    totals (when no order's outcome is unknown)."""
    problems: list[str] = []
    query = system.query_client("orders")
    try:
        for oid, order in model.certain().items():
            read = await query.get(oid, min_version=order.version, wait_ms=5000)
            if read.status_code != 200:
                problems.append(f"order {oid}: {read.status_code} {read.text[:200]}")
                continue
            diff = order.differences(read.json())
            if diff:
                problems.append(f"order {oid}: (read, model) {diff}")
        if not model.uncertain:
            rows = (await query.stats()).json()["items"]
            got = {
                str(r["customer_id"]): (int(r["submitted_orders"]), Decimal(r["total"]))
                for r in rows
                if r["customer_id"] in customers
            }
            want = {c: t for c, t in model.customer_totals(customers).items() if t[0]}
            got = {c: t for c, t in got.items() if t[0] or t[1]}
            if got != want:
                problems.append(f"customer totals (api, model): {got} != {want}")
    finally:
        await query.aclose()
    return problems


async def orders_ws_converged(ws: WsWatcher, model: OrderModel, faults: list[str]) -> None:
    """``/ws/orders`` reaches every certain order's final version (after a resync when Redis
    was down: pub/sub notices are at most once)."""
    targets = {oid: o.version for oid, o in model.certain().items()}

    async def converged() -> bool:
        seen = ws.versions()
        return all(seen.get(oid, 0) >= v for oid, v in targets.items())

    try:
        await eventually(converged, timeout=20, what="orders WebSocket at final versions")
    except AssertionError:
        if not any("redis" in f for f in faults):
            raise
        await ws.resync(dict.fromkeys(targets, 0))
        await eventually(converged, timeout=30, what="orders WebSocket after resync")
    beyond = {oid: v for oid, v in ws.versions().items() if oid in targets and v > targets[oid]}
    assert not beyond, f"orders WebSocket versions beyond the model: {beyond}"
