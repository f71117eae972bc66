"""The reliability report: per scenario one line per app (the catalog, orders), printed at the
end and saved as JSON. Per app: commands sent and accepted, the floor, the events those
commands wrote, lost and double-applied (0/0 expected) and mismatched documents."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class AppRow:
    """One app's share of a scenario."""

    commands_sent: int = 0
    commands_accepted: int = 0
    min_accepted: int = 0
    """The scenario's floor of accepted commands for this app (it fails below it)."""
    events: int = 0
    lost: int = 0
    double_applied: int = 0
    mismatched: int = 0
    passed: bool = False


@dataclass
class ScenarioRow:
    scenario: str
    faults_injected: int = 0
    max_convergence_s: float = 0.0
    passed: bool = False
    notes: str = ""
    faults: list[str] = field(default_factory=list)
    apps: dict[str, AppRow] = field(default_factory=dict)

    def total(self, attribute: str) -> int:
        return sum(int(getattr(counts, attribute)) for counts in self.apps.values())


@dataclass
class Report:
    profile: str
    seed: int
    rows: list[ScenarioRow] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, row: ScenarioRow) -> None:
        self.rows.append(row)

    def app_names(self) -> list[str]:
        return list(dict.fromkeys(app for r in self.rows for app in r.apps))

    def app_totals(self, app: str) -> dict[str, int]:
        counted = [r.apps[app] for r in self.rows if app in r.apps]
        return {
            key: sum(int(getattr(c, key)) for c in counted)
            for key in ("commands_sent", "commands_accepted", "events", "lost", "double_applied")
        }

    def totals(self) -> dict[str, Any]:
        return {
            "scenarios": len(self.rows),
            "passed": sum(r.passed for r in self.rows),
            "commands_sent": sum(r.total("commands_sent") for r in self.rows),
            "commands_accepted": sum(r.total("commands_accepted") for r in self.rows),
            "events": sum(r.total("events") for r in self.rows),
            "faults_injected": sum(r.faults_injected for r in self.rows),
            "lost": sum(r.total("lost") for r in self.rows),
            "double_applied": sum(r.total("double_applied") for r in self.rows),
            "max_convergence_s": max((r.max_convergence_s for r in self.rows), default=0.0),
            "apps": {app: self.app_totals(app) for app in self.app_names()},
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
            "app",
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
        lines: list[tuple[str, ...]] = []
        for r in self.rows:
            for app, c in r.apps.items():
                lines.append(
                    (
                        r.scenario,
                        app,
                        str(c.commands_sent),
                        str(c.commands_accepted),
                        str(c.min_accepted),
                        str(c.events),
                        str(r.faults_injected),
                        str(c.lost),
                        str(c.double_applied),
                        f"{r.max_convergence_s:.2f}",
                        "pass" if c.passed else "FAIL",
                    )
                )
        t = self.totals()
        for app in self.app_names():
            a = self.app_totals(app)
            passed = sum(1 for r in self.rows if app in r.apps and r.apps[app].passed)
            lines.append(
                (
                    "TOTAL",
                    app,
                    str(a["commands_sent"]),
                    str(a["commands_accepted"]),
                    "",
                    str(a["events"]),
                    str(t["faults_injected"]),
                    str(a["lost"]),
                    str(a["double_applied"]),
                    f"{t['max_convergence_s']:.2f}",
                    f"{passed}/{t['scenarios']}",
                )
            )
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

        def fmt(row: tuple[str, ...]) -> str:
            cells = [
                row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i])
                for i in range(len(row))
            ]
            return "| " + " | ".join(cells) + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        title = f"Tandem reliability report (profile {self.profile}, seed {self.seed})"
        return "\n".join([title, fmt(header), sep, *(fmt(row) for row in lines)])
