"""The model of model-based testing: what accepted commands say the catalog must be.

Independent of the event store and of the fold: the model only knows the commands a client
sent and the version each response reported. Per product, the accepted versions must be
exactly 1..N (no gap: nothing lost; no repeat: nothing applied twice), and applying the
commands' intended effects in version order gives the state every reader must end up with.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tandem_e2e.fold import CENT, money


@dataclass
class Model:
    effects: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    uncertain: set[str] = field(default_factory=set)
    """Products with an unknown-outcome command: only the fold check can judge them."""

    def accept(self, product_id: str, version: int, effect: dict[str, Any]) -> list[str]:
        """Record an accepted command; returns problems (a version reported twice).

        A command that changes nothing (details equal to the current ones) records no event
        and answers the version it found, so a repeat is fine when the effect already holds
        at that version."""
        seen = self.effects[product_id]
        if version in seen:
            held = self.state(product_id, up_to=version)
            if all(held.get(key) == value for key, value in effect.items()):
                return []
            return [f"{product_id} v{version} reported by two accepted commands"]
        seen[version] = effect
        return []

    def version(self, product_id: str) -> int:
        return max(self.effects[product_id], default=0)

    def state(self, product_id: str, up_to: int | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for version in sorted(self.effects[product_id]):
            if up_to is not None and version > up_to:
                break
            doc.update(self.effects[product_id][version])
            doc["version"] = version
        return doc

    def gaps(self) -> list[str]:
        problems = []
        for pid, effects in self.effects.items():
            if pid in self.uncertain:
                continue
            versions = sorted(effects)
            if versions != list(range(1, len(versions) + 1)):
                problems.append(f"{pid}: accepted versions {versions}")
        return problems

    def certain_ids(self) -> list[str]:
        return [pid for pid in self.effects if pid not in self.uncertain and self.effects[pid]]

    def category_stats(self) -> dict[str, tuple[int, Decimal]]:
        counts: dict[str, int] = defaultdict(int)
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for pid in self.effects:
            doc = self.state(pid)
            if doc.get("status") == "active":
                counts[doc["category"]] += 1
                sums[doc["category"]] += Decimal(str(doc["price"]))
        return {c: (counts[c], sums[c].quantize(CENT)) for c in counts}


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for key, want in expected.items():
        got = actual.get(key)
        if key == "price":
            same = money(got if got is not None else "0") == money(want)
        else:
            same = got == want
        if not same:
            diff[key] = (got, want)
    return diff


# --- orders ------------------------------------------------------------------------------------

OPEN, SUBMITTED, SHIPPED, CANCELLED = "open", "submitted", "shipped", "cancelled"
COUNTED = (SUBMITTED, SHIPPED)
"""An order counts in its customer's totals from submission until it is cancelled."""


@dataclass
class OrderState:
    """What the model knows of one order: the orders rules as a user reads them, written
    again here (not imported from ``tandem_orders``), so a rule the app breaks shows."""

    customer_id: str
    lines: dict[str, tuple[int, Decimal]]
    status: str = OPEN
    version: int = 1

    @property
    def total(self) -> Decimal:
        return sum((price * qty for qty, price in self.lines.values()), Decimal("0.00"))

    def allows(self, kind: str, product_id: str | None = None) -> bool:
        """Whether the rules accept ``kind`` now (else: 409)."""
        if kind == "add_line":
            return self.status == OPEN and product_id not in self.lines
        if kind == "remove_line":
            return self.status == OPEN and product_id in self.lines
        if kind == "submit":
            return self.status == OPEN and bool(self.lines)
        if kind == "ship":
            return self.status == SUBMITTED
        if kind == "cancel":
            return self.status in (OPEN, SUBMITTED)
        raise ValueError(kind)

    def apply(
        self, kind: str, product_id: str = "", quantity: int = 0, price: Decimal = CENT
    ) -> None:
        """An accepted command's effect (one event, one version)."""
        if kind == "add_line":
            self.lines[product_id] = (quantity, price)
        elif kind == "remove_line":
            del self.lines[product_id]
        else:
            self.status = {"submit": SUBMITTED, "ship": SHIPPED, "cancel": CANCELLED}[kind]
        self.version += 1

    def differences(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The query API's document against the model."""
        got = {
            "status": doc.get("status"),
            "version": doc.get("version"),
            "customer_id": doc.get("customer_id"),
            "lines": sorted(
                (ln["product_id"], int(ln["quantity"]), money(ln["unit_price"]))
                for ln in doc.get("lines", [])
            ),
            "total": money(doc.get("total", "0")),
        }
        want = {
            "status": self.status,
            "version": self.version,
            "customer_id": self.customer_id,
            "lines": sorted((p, q, money(u)) for p, (q, u) in self.lines.items()),
            "total": money(self.total),
        }
        return {k: (got[k], v) for k, v in want.items() if got[k] != v}


@dataclass
class OrderModel:
    orders: dict[str, OrderState] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    """Orders with an unknown-outcome command: only the fold check can judge them."""

    def certain(self) -> dict[str, OrderState]:
        return {oid: o for oid, o in self.orders.items() if oid not in self.uncertain}

    def customer_totals(self, customers: set[str]) -> dict[str, tuple[int, Decimal]]:
        totals: dict[str, tuple[int, Decimal]] = {c: (0, Decimal("0.00")) for c in customers}
        for order in self.orders.values():
            if order.status in COUNTED and order.customer_id in customers:
                count, amount = totals[order.customer_id]
                totals[order.customer_id] = (count + 1, money(amount + order.total))
        return totals
