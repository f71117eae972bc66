"""A steady, seeded command load from several concurrent clients.

Each client owns the products it created, so it knows their versions and sends ``If-Match``
with them; a product whose last command had an unknown outcome (timeout, reset) is retired
from the client's pool because its version is no longer certain. Commands that get 503 (a
server down) are expected during faults and simply counted.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import Decimal

from tandem_e2e.clients import CommandClient, Outcome
from tandem_e2e.ledger import Ledger
from tandem_e2e.system import System

CATEGORIES = ("books", "games", "tools", "garden", "music")


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
        if outcome.ok and outcome.product_id and outcome.version:
            state.versions[outcome.product_id] = outcome.version
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
        state = ClientState()
        try:
            while remaining[0] > 0 and not (stop and stop.is_set()):
                remaining[0] -= 1
                await one_command(client, state, rng, tag)
                await asyncio.sleep(pace_s)
        finally:
            await client.aclose()

    await asyncio.gather(*(run(i) for i in range(clients)))
