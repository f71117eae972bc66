"""One scenario's bookkeeping and its closing check, shared by every e2e test.

:meth:`ScenarioRun.finish` is the check each scenario ends with: the system converges to
"read models = fold of the event store" within the profile's deadline; every accepted command
is in the store at the version its response gave (nothing lost); no product has more events
than accepted plus unknown-outcome commands (nothing double-applied). The row goes to the
reliability report whether the scenario passed or not.

Those checks hold trivially when nothing was accepted (a stack answering 401 or 5xx to every
command loses nothing), so each scenario also names a floor of accepted commands,
``finish(min_accepted=...)``; fewer fails the scenario, and the floor is in the report.
"""

from __future__ import annotations

import time
from collections import Counter

from tandem_e2e.converge import ConvergenceTimeout, eventually
from tandem_e2e.fold import Comparison
from tandem_e2e.ledger import Ledger
from tandem_e2e.report import Report, ScenarioRow
from tandem_e2e.system import System


class ScenarioFailure(AssertionError):
    pass


class ScenarioRun:
    def __init__(self, system: System, report: Report, name: str) -> None:
        self.system = system
        self.report = report
        self.row = ScenarioRow(scenario=name)
        self.ledger = Ledger()
        self.convergence: list[float] = []
        self.started = time.monotonic()
        self.extra_lost: list[str] = []
        self.extra_double: list[str] = []

    def fault(self, description: str) -> None:
        self.row.faults.append(f"{time.monotonic() - self.started:.1f}s {description}")

    def note(self, text: str) -> None:
        self.row.notes = f"{self.row.notes}; {text}" if self.row.notes else text

    def lost(self, description: str) -> None:
        self.extra_lost.append(description)

    def double(self, description: str) -> None:
        self.extra_double.append(description)

    async def converge(self, timeout: float | None = None, what: str = "convergence") -> float:
        """Wait until read models = fold of the store; record and return the seconds taken."""
        limit = timeout or self.system.config.profile.convergence_timeout_s
        last: list[Comparison] = []

        async def check() -> Comparison | None:
            comparison = await self.system.check()
            last[:] = [comparison]
            return comparison if comparison.ok else None

        async def describe() -> str:
            return last[0].summary() if last else "never compared"

        _, elapsed = await eventually(
            check, timeout=limit, interval=0.25, what=what, describe=describe
        )
        self.convergence.append(elapsed)
        return elapsed

    async def check_ledger(self) -> tuple[list[str], list[str], int]:
        """(lost, double-applied, events) of this scenario's commands against the store."""
        ids = self.ledger.product_ids()
        versions = await self.system.store_versions(ids)
        lost: list[str] = []
        double: list[str] = []
        for record in self.ledger.accepted():
            pid = record.product_id
            if pid is None:
                lost.append(f"accepted {record.kind} without an id in its response")
                continue
            want = 1 if record.kind == "create" else record.version
            if want is not None and want not in versions.get(pid, []):
                lost.append(f"{record.kind} {pid} v{want} accepted but not in the store")
        accepted = Counter(r.product_id for r in self.ledger.accepted())
        unknown = Counter(r.product_id for r in self.ledger.unknown())
        for pid, found in versions.items():
            dupes = [v for v, n in Counter(found).items() if n > 1]
            if dupes:
                double.append(f"{pid} has versions {dupes} more than once")
            allowed = accepted[pid] + unknown[pid]
            if len(found) > allowed:
                double.append(f"{pid}: {len(found)} events for {allowed} commands")
        return lost, double, sum(len(v) for v in versions.values())

    async def finish(self, *, min_accepted: int, timeout: float | None = None) -> None:
        """The closing check; ``min_accepted`` is the fewest accepted commands the scenario
        must have seen (required: without it, a stack refusing everything would pass)."""
        if min_accepted < 0:
            raise ValueError("min_accepted must not be negative")
        self.row.min_accepted = min_accepted
        comparison: Comparison | None = None
        error: str | None = None
        try:
            await self.converge(timeout, what=f"{self.row.scenario}: read models = fold")
        except ConvergenceTimeout as exc:
            error = str(exc)
        try:
            comparison = await self.system.check()
            lost, double, events = await self.check_ledger()
        except Exception as exc:
            self._record(None, [], [], 0)
            raise ScenarioFailure(f"{self.row.scenario}: final check failed: {exc!r}") from exc
        lost += self.extra_lost
        double += self.extra_double
        self._record(comparison, lost, double, events)
        accepted = len(self.ledger.accepted())
        problems = [
            *(
                [
                    f"{accepted} of {self.ledger.sent} commands accepted, fewer than the "
                    f"floor of {min_accepted} (statuses {self.ledger.status_counts()})"
                ]
                if accepted < min_accepted
                else []
            ),
            *(["; ".join(lost[:8])] if lost else []),
            *(["; ".join(double[:8])] if double else []),
            *([comparison.summary()] if not comparison.ok else []),
            *([error] if error and not comparison.ok else []),
        ]
        if problems:
            raise ScenarioFailure(f"{self.row.scenario}: " + " | ".join(problems))

    def _record(
        self, comparison: Comparison | None, lost: list[str], double: list[str], events: int
    ) -> None:
        row = self.row
        row.commands_sent = self.ledger.sent
        row.commands_accepted = len(self.ledger.accepted())
        row.events = events
        row.faults_injected = len(row.faults)
        row.lost = len(lost) + (len(comparison.lost) if comparison else 0)
        row.double_applied = len(double) + (len(comparison.double_applied) if comparison else 0)
        row.mismatched = len(comparison.mismatched) if comparison else 0
        row.max_convergence_s = round(max(self.convergence, default=0.0), 2)
        row.passed = bool(
            comparison
            and comparison.ok
            and not lost
            and not double
            and row.commands_accepted >= row.min_accepted
        )
        self.report.add(row)
