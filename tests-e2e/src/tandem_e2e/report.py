"""The reliability report: one row per scenario, printed at the end and saved as JSON."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ScenarioRow:
    scenario: str
    commands_sent: int = 0
    commands_accepted: int = 0
    min_accepted: int = 0
    """The scenario's floor of accepted commands (it fails below it)."""
    events: int = 0
    faults_injected: int = 0
    lost: int = 0
    double_applied: int = 0
    mismatched: int = 0
    max_convergence_s: float = 0.0
    passed: bool = False
    notes: str = ""
    faults: list[str] = field(default_factory=list)


@dataclass
class Report:
    profile: str
    seed: int
    rows: list[ScenarioRow] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, row: ScenarioRow) -> None:
        self.rows.append(row)

    def totals(self) -> dict[str, Any]:
        return {
            "scenarios": len(self.rows),
            "passed": sum(r.passed for r in self.rows),
            "commands_sent": sum(r.commands_sent for r in self.rows),
            "events": sum(r.events for r in self.rows),
            "faults_injected": sum(r.faults_injected for r in self.rows),
            "lost": sum(r.lost for r in self.rows),
            "double_applied": sum(r.double_applied for r in self.rows),
            "max_convergence_s": max((r.max_convergence_s for r in self.rows), default=0.0),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "seed": self.seed,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "duration_s": round(time.time() - self.started, 1),
            "rows": [asdict(r) for r in self.rows],
            "totals": self.totals(),
            **self.extra,
        }

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.to_json(), indent=2)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = directory / f"reliability-{self.profile}-{stamp}.json"
        path.write_text(payload)
        (directory / "reliability-latest.json").write_text(payload)
        return path

    def table(self) -> str:
        header = (
            "scenario",
            "commands",
            "accepted",
            "floor",
            "events",
            "faults",
            "lost",
            "double",
            "max conv s",
            "result",
        )
        lines = [
            (
                r.scenario,
                str(r.commands_sent),
                str(r.commands_accepted),
                str(r.min_accepted),
                str(r.events),
                str(r.faults_injected),
                str(r.lost),
                str(r.double_applied),
                f"{r.max_convergence_s:.2f}",
                "pass" if r.passed else "FAIL",
            )
            for r in self.rows
        ]
        t = self.totals()
        lines.append(
            (
                "TOTAL",
                str(t["commands_sent"]),
                str(sum(r.commands_accepted for r in self.rows)),
                "",
                str(t["events"]),
                str(t["faults_injected"]),
                str(t["lost"]),
                str(t["double_applied"]),
                f"{t['max_convergence_s']:.2f}",
                f"{t['passed']}/{t['scenarios']}",
            )
        )
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

        def fmt(row: tuple[str, ...]) -> str:
            cells = [
                row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
                for i in range(len(row))
            ]
            return "| " + " | ".join(cells) + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        title = f"Tandem reliability report (profile {self.profile}, seed {self.seed})"
        return "\n".join([title, fmt(header), sep, *(fmt(row) for row in lines)])
