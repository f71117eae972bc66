"""A steady, seeded command load from several concurrent clients, on both apps.

Each client sends catalog commands and (a share ``ORDER_SHARE`` of its commands) orders
commands, each on aggregates it owns.

Each client owns the products it created, so it knows their versions and sends ``If-Match``
with them; an aggregate whose last command had an unknown outcome (timeout, reset) is retired
from the client's pool because its version is no longer certain. Order commands are always
legal by the model's rules (:class:`~tandem_e2e.model.OrderState`), so under load every one
is accepted unless a server is down. Commands that get 503 (a
server down) are expected during faults and simply counted.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import Decimal

from tandem_e2e.clients import CommandClient, OrderClient, Outcome
from tandem_e2e.ledger import Ledger
from tandem_e2e.model import OPEN, SUBMITTED, OrderState
from tandem_e2e.system import System

CATEGORIES = ("books", "games", "tools", "garden", "music")
ORDER_SHARE = 0.3
"""The share of a load's commands that go to the orders app."""


def floors(total: int, fraction: float = 0.5) -> dict[str, int]:
    """Per app, ``fraction`` of the commands a load of ``total`` sends it on average: the
    floors of a load scenario (the draw of the app per command is random, hence the margin)."""
    return {
        "catalog": int(total * (1 - ORDER_SHARE) * fraction),
        "orders": int(total * ORDER_SHARE * fraction * 0.7),
    }


def random_price(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(100, 50_000)) / 100


@dataclass
class ClientState:
    versions: dict[str, int] = field(default_factory=dict)
    discontinued: set[str] = field(default_factory=set)


async def one_command(
    client: CommandClient, state: ClientState, rng: random.Random, tag: str
) -> Outcome:
    live = [p for p in state.versions if p not in state.discontinued]
    roll = rng.random()
    if not live or roll < 0.3:
        outcome = await client.create(
            f"{tag} {rng.randrange(10**6)}",
            random_price(rng),
            rng.choice(CATEGORIES),
            description=f"load {tag}",
        )
        if outcome.ok and outcome.aggregate_id and outcome.version:
            state.versions[outcome.aggregate_id] = outcome.version
        return outcome
    pid = rng.choice(live)
    version = state.versions[pid]
    if roll < 0.65:
        outcome = await client.change_price(pid, random_price(rng), version)
    elif roll < 0.95:
        fields = rng.choice(
            [
                {"name": f"{tag} renamed {rng.randrange(10**6)}"},
                {"category": rng.choice(CATEGORIES)},
                {"description": f"desc {rng.randrange(10**6)}"},
            ]
        )
        outcome = await client.update(pid, version, **fields)
    else:
        outcome = await client.discontinue(pid, version, reason="load")
        if outcome.ok:
            state.discontinued.add(pid)
    if outcome.ok and outcome.version:
        state.versions[pid] = outcome.version
    elif outcome.status is None or outcome.status == 409:
        state.versions.pop(pid)  # version unknown now: leave this product alone
    return outcome


async def one_order_command(
    client: OrderClient, orders: dict[str, OrderState], rng: random.Random, tag: str
) -> Outcome:
    """One legal command: place, add or remove a line, submit, ship or cancel."""
    live = [oid for oid, o in orders.items() if o.status in (OPEN, SUBMITTED)]
    if not live or rng.random() < 0.25:
        oid = f"{tag}-{rng.randrange(16**10):010x}"
        lines = {f"p-{rng.randrange(50)}": (rng.randint(1, 4), random_price(rng))}
        customer = f"{tag}-c{rng.randrange(4)}"
        outcome = await client.place(oid, customer, [(p, q, u) for p, (q, u) in lines.items()])
        if outcome.ok:
            orders[oid] = OrderState(customer, lines)
        return outcome
    oid = rng.choice(live)
    order = orders[oid]
    if order.status == OPEN:
        kinds = ["add_line", "add_line", "remove_line", "submit", "submit", "cancel"]
    else:
        kinds = ["ship", "ship", "cancel"]
    first = next(iter(order.lines), None)
    kind = rng.choice([k for k in kinds if order.allows(k, first if k == "remove_line" else None)])
    product, quantity, price = first or "", 0, random_price(rng)
    if kind == "add_line":
        product, quantity = f"p-{rng.randrange(50, 100)}", rng.randint(1, 4)
        while product in order.lines:
            product = f"p-{rng.randrange(50, 100)}"
        outcome = await client.add_line(oid, product, quantity, price, order.version)
    elif kind == "remove_line":
        outcome = await client.remove_line(oid, product, order.version)
    else:
        outcome = await client.transition(oid, kind, order.version)
    if outcome.ok:
        order.apply(kind, product, quantity, price)
    elif outcome.status is None or outcome.status == 409:
        orders.pop(oid)  # state unknown now: leave this order alone
    return outcome


async def steady_load(
    system: System,
    ledger: Ledger,
    *,
    clients: int,
    total: int,
    seed: int,
    tag: str,
    stop: asyncio.Event | None = None,
    pace_s: float = 0.01,
) -> None:
    """Send ``total`` commands from ``clients`` concurrent clients, or until ``stop`` is set.

    ``pace_s`` spaces each client's commands so a fault lands *during* the load rather than
    after a burst; it paces the load and is not a wait for any condition.
    """
    remaining = [total]

    async def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = system.command_client(ledger, f"{tag}-{index}")
        order_client = system.order_client(ledger, f"{tag}-{index}")
        state = ClientState()
        orders: dict[str, OrderState] = {}
        try:
            while remaining[0] > 0 and not (stop and stop.is_set()):
                remaining[0] -= 1
                if rng.random() < ORDER_SHARE:
                    await one_order_command(order_client, orders, rng, f"{tag}-{index}")
                else:
                    await one_command(client, state, rng, tag)
                await asyncio.sleep(pace_s)
        finally:
            await client.aclose()
            await order_client.aclose()

    await asyncio.gather(*(run(i) for i in range(clients)))
