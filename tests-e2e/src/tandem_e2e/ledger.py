"""What was sent and what came back: the evidence "nothing lost" is checked against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["accepted", "rejected", "unavailable", "unknown"]


@dataclass(frozen=True)
class CommandRecord:
    kind: str
    aggregate_id: str | None
    status: int | None
    """HTTP status, or None when no response came back (the outcome is unknown)."""
    version: int | None
    """The aggregate version the response reported for an accepted command."""
    client: str = ""
    idempotency_key: str | None = None
    replay: bool = False
    """True for a deliberate Idempotency-Key replay (appends nothing by contract)."""
    app: str = "catalog"
    """The app (declaration name) whose aggregate the command addressed."""

    @property
    def outcome(self) -> Outcome:
        if self.status is None:
            return "unknown"
        if 200 <= self.status < 300:
            return "accepted"
        if self.status == 503:
            return "unavailable"
        return "rejected"


@dataclass
class Ledger:
    records: list[CommandRecord] = field(default_factory=list)

    def add(self, record: CommandRecord) -> None:
        self.records.append(record)

    def extend(self, records: Iterable[CommandRecord]) -> None:
        self.records.extend(records)

    @property
    def sent(self) -> int:
        return len(self.records)

    def of(self, app: str | None) -> list[CommandRecord]:
        return [r for r in self.records if app is None or r.app == app]

    def accepted(self, app: str | None = None) -> list[CommandRecord]:
        return [r for r in self.of(app) if r.outcome == "accepted" and not r.replay]

    def unknown(self, app: str | None = None) -> list[CommandRecord]:
        return [r for r in self.of(app) if r.outcome == "unknown"]

    def ids(self, app: str | None = None) -> set[str]:
        """The aggregate ids the commands (of one app, or all) addressed."""
        return {r.aggregate_id for r in self.of(app) if r.aggregate_id}

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            key = str(record.status)
            counts[key] = counts.get(key, 0) + 1
        return counts
