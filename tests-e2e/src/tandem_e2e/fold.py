"""The specification of the read side: a pure fold of the event store.

Everything here is plain Python over :mod:`tandem_catalog.events`, independent of the
projector's code, so a bug there cannot hide itself here. :func:`compare` classifies every
difference: a read model *behind* the store lost something, one *ahead* of it (or a category
counted twice) applied something twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tandem.events import DomainEvent
from tandem_catalog.events import (
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductPriceChanged,
)

CENT = Decimal("0.01")
COMPARED_FIELDS = ("name", "description", "price", "category", "status", "version")


@dataclass
class ExpectedProduct:
    id: str
    name: str
    description: str
    price: Decimal
    category: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "price": self.price.quantize(CENT),
            "category": self.category,
            "status": self.status,
            "version": self.version,
        }


@dataclass(frozen=True)
class CategoryStat:
    active_count: int
    price_sum: Decimal


@dataclass
class StoreIssues:
    """Problems of the event store itself (the write side's guarantees)."""

    version_gaps: list[str] = field(default_factory=list)
    duplicate_event_ids: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def apply(products: dict[str, ExpectedProduct], event: DomainEvent) -> None:
    """Apply one event; the store guarantees per-aggregate version order."""
    pid = event.aggregate_id
    if isinstance(event, ProductCreated):
        products[pid] = ExpectedProduct(
            id=pid,
            name=event.name,
            description=event.description,
            price=event.price,
            category=event.category,
            status="active",
            version=event.version,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
        )
        return
    product = products[pid]
    if isinstance(event, ProductDetailsUpdated):
        if event.name is not None:
            product.name = event.name
        if event.description is not None:
            product.description = event.description
        if event.category is not None:
            product.category = event.category
    elif isinstance(event, ProductPriceChanged):
        product.price = event.price
    elif isinstance(event, ProductDiscontinued):
        product.status = "discontinued"
    product.version = event.version
    product.updated_at = event.occurred_at


def check_streams(
    events: Iterable[DomainEvent],
    creation: type[DomainEvent],
    apply_event: Callable[[DomainEvent], None],
    known: Container[str],
) -> StoreIssues:
    """Apply each event once, in store order, and report what the store itself got wrong:
    repeated event ids, version gaps, events of an aggregate that was never created."""
    issues = StoreIssues()
    seen_ids: set[str] = set()
    last_version: dict[str, int] = {}
    for event in events:
        if event.event_id in seen_ids:
            issues.duplicate_event_ids.append(event.event_id)
            continue
        seen_ids.add(event.event_id)
        expected = last_version.get(event.aggregate_id, 0) + 1
        if event.version != expected:
            issues.version_gaps.append(
                f"{event.aggregate_id}: v{event.version} after v{expected - 1}"
            )
        last_version[event.aggregate_id] = event.version
        if not isinstance(event, creation) and event.aggregate_id not in known:
            issues.orphans.append(f"{event.aggregate_id} v{event.version}")
            continue
        apply_event(event)
    return issues


def fold_products(
    events: Iterable[DomainEvent],
) -> tuple[dict[str, ExpectedProduct], StoreIssues]:
    products: dict[str, ExpectedProduct] = {}
    issues = check_streams(events, ProductCreated, lambda e: apply(products, e), products)
    return products, issues


def fold_category_stats(products: Mapping[str, ExpectedProduct]) -> dict[str, CategoryStat]:
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for product in products.values():
        if product.status == "active":
            counts[product.category] += 1
            sums[product.category] += product.price
    return {c: CategoryStat(counts[c], sums[c].quantize(CENT)) for c in counts}


def money(value: Any) -> Decimal:
    """Read models may store prices as float, Decimal128 or string; compare to the cent."""
    if hasattr(value, "to_decimal"):
        value = value.to_decimal()
    return Decimal(str(value)).quantize(CENT)


@dataclass
class Comparison:
    products_expected: int = 0
    lost: list[str] = field(default_factory=list)
    double_applied: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    store: StoreIssues = field(default_factory=StoreIssues)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.double_applied
            or self.mismatched
            or self.store.version_gaps
            or self.store.duplicate_event_ids
            or self.store.orphans
        )

    def summary(self, limit: int = 8) -> str:
        parts = []
        for label, items in (
            ("lost", self.lost),
            ("double-applied", self.double_applied),
            ("mismatched", self.mismatched),
            ("store version gaps", self.store.version_gaps),
            ("store duplicate event ids", self.store.duplicate_event_ids),
            ("store orphans", self.store.orphans),
        ):
            if items:
                parts.append(f"{label} ({len(items)}): {items[:limit]}")
        return "; ".join(parts) or "read models = fold of the event store"


def compare(
    expected: Mapping[str, ExpectedProduct],
    actual_products: Iterable[Mapping[str, Any]],
    actual_stats: Iterable[Mapping[str, Any]],
    store: StoreIssues | None = None,
) -> Comparison:
    result = Comparison(products_expected=len(expected), store=store or StoreIssues())
    seen: set[str] = set()
    for doc in actual_products:
        pid = str(doc.get("id") or doc["_id"])
        seen.add(pid)
        want = expected.get(pid)
        if want is None:
            result.double_applied.append(f"product {pid} is in the read model, not in the store")
            continue
        version = int(doc.get("version", 0))
        if version < want.version:
            result.lost.append(f"product {pid} at v{version}, store at v{want.version}")
            continue
        if version > want.version:
            result.double_applied.append(f"product {pid} at v{version}, store at v{want.version}")
            continue
        got = {
            "name": doc.get("name"),
            "description": doc.get("description"),
            "price": money(doc.get("price", "0")),
            "category": doc.get("category"),
            "status": doc.get("status"),
            "version": version,
        }
        diff = {k: (got[k], v) for k, v in want.fields().items() if got[k] != v}
        if diff:
            result.mismatched.append(f"product {pid}: (read model, fold) {diff}")
    for pid in expected.keys() - seen:
        result.lost.append(f"product {pid} v{expected[pid].version} missing from the read model")

    want_stats = fold_category_stats(expected)
    got_stats: dict[str, CategoryStat] = {}
    for doc in actual_stats:
        category = str(doc.get("category") or doc["_id"])
        # The projector stores integer counters only (the catalog's ``present`` derives
        # ``price_sum`` on read): the sum is the exact cents.
        cents = doc.get("price_sum_cents")
        price_sum = money(Decimal(int(cents)) / 100) if cents is not None else money(0)
        got_stats[category] = CategoryStat(int(doc.get("active_count", 0)), price_sum)
    zero = CategoryStat(0, Decimal("0.00"))
    for category in want_stats.keys() | got_stats.keys():
        want_stat = want_stats.get(category, zero)
        got_stat = got_stats.get(category, zero)
        if got_stat == want_stat:
            continue
        line = f"category {category}: read model {got_stat}, fold {want_stat}"
        if got_stat.active_count > want_stat.active_count:
            result.double_applied.append(line)
        elif got_stat.active_count < want_stat.active_count:
            result.lost.append(line)
        else:
            result.mismatched.append(line)
    return result
