"""One scenario's bookkeeping and its closing check, shared by every e2e test.

:meth:`ScenarioRun.finish` is the check each scenario ends with, for each app (the catalog
and orders): the system converges to "read models = fold of the event store" within the
profile's deadline; every accepted command is in its app's store at the version its response
gave (nothing lost); no aggregate has more events than accepted plus unknown-outcome commands
(nothing double-applied). The rows (one per app) go to the reliability report whether the
scenario passed or not.

Those checks hold trivially when nothing was accepted (a stack answering 401 or 5xx to every
command loses nothing), so each scenario also names a floor of accepted commands per app,
``finish(min_accepted={"catalog": 20, "orders": 10})``; fewer fails the scenario, and the
floors are in the report. An app the mapping leaves out has a floor of 0.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from tandem_e2e.converge import ConvergenceTimeout, eventually
from tandem_e2e.fold import Comparison
from tandem_e2e.ledger import Ledger
from tandem_e2e.report import AppRow, Report, ScenarioRow
from tandem_e2e.system import APPS, System


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
        self.extra_lost: dict[str, list[str]] = {app: [] for app in APPS}
        self.extra_double: dict[str, list[str]] = {app: [] for app in APPS}

    def fault(self, description: str) -> None:
        self.row.faults.append(f"{time.monotonic() - self.started:.1f}s {description}")

    def note(self, text: str) -> None:
        self.row.notes = f"{self.row.notes}; {text}" if self.row.notes else text

    def lost(self, description: str, app: str = "catalog") -> None:
        """A loss a test found itself (the model-based test's model against the readers)."""
        self.extra_lost[app].append(description)

    def double(self, description: str, app: str = "catalog") -> None:
        self.extra_double[app].append(description)

    async def converge(self, timeout: float | None = None, what: str = "convergence") -> float:
        """Wait until read models = fold of the store; record and return the seconds taken."""
        limit = timeout or self.system.config.profile.convergence_timeout_s
        last: list[dict[str, Comparison]] = []

        async def check() -> dict[str, Comparison] | None:
            comparisons = await self.system.check()
            last[:] = [comparisons]
            return comparisons if all(c.ok for c in comparisons.values()) else None

        async def describe() -> str:
            return summary(last[0]) if last else "never compared"

        _, elapsed = await eventually(
            check, timeout=limit, interval=0.25, what=what, describe=describe
        )
        self.convergence.append(elapsed)
        return elapsed

    async def check_ledger(self, app: str) -> tuple[list[str], list[str], int]:
        """(lost, double-applied, events) of this scenario's commands of ``app`` against its
        store."""
        versions = await self.system.store_versions(self.ledger.ids(app), app)
        lost: list[str] = []
        double: list[str] = []
        for record in self.ledger.accepted(app):
            aid = record.aggregate_id
            if aid is None:
                lost.append(f"accepted {app} {record.kind} without an id in its response")
                continue
            want = 1 if record.kind in ("create", "place") else record.version
            if want is not None and want not in versions.get(aid, []):
                lost.append(f"{app} {record.kind} {aid} v{want} accepted but not in the store")
        accepted = Counter(r.aggregate_id for r in self.ledger.accepted(app))
        unknown = Counter(r.aggregate_id for r in self.ledger.unknown(app))
        for aid, found in versions.items():
            dupes = [v for v, n in Counter(found).items() if n > 1]
            if dupes:
                double.append(f"{app} {aid} has versions {dupes} more than once")
            allowed = accepted[aid] + unknown[aid]
            if len(found) > allowed:
                double.append(f"{app} {aid}: {len(found)} events for {allowed} commands")
        return lost, double, sum(len(v) for v in versions.values())

    async def finish(
        self, *, min_accepted: Mapping[str, int], timeout: float | None = None
    ) -> None:
        """The closing check; ``min_accepted`` is, per app, the fewest accepted commands the
        scenario must have seen (required: without it, a stack refusing everything would
        pass)."""
        unknown_apps = set(min_accepted) - set(APPS)
        if unknown_apps or any(n < 0 for n in min_accepted.values()):
            raise ValueError(f"min_accepted: per app of {sorted(APPS)}, never negative")
        floors = {app: int(min_accepted.get(app, 0)) for app in APPS}
        error: str | None = None
        try:
            await self.converge(timeout, what=f"{self.row.scenario}: read models = fold")
        except ConvergenceTimeout as exc:
            error = str(exc)
        results: dict[str, tuple[Comparison, list[str], list[str], int]] = {}
        try:
            comparisons = await self.system.check()
            for app in APPS:
                lost, double, events = await self.check_ledger(app)
                lost += self.extra_lost[app]
                double += self.extra_double[app]
                results[app] = (comparisons[app], lost, double, events)
        except Exception as exc:
            self._record({}, floors)
            raise ScenarioFailure(f"{self.row.scenario}: final check failed: {exc!r}") from exc
        self._record(results, floors)
        problems: list[str] = []
        for app, (comparison, lost, double, _) in results.items():
            accepted = len(self.ledger.accepted(app))
            if accepted < floors[app]:
                problems.append(
                    f"{app}: {accepted} of {len(self.ledger.of(app))} commands accepted, fewer "
                    f"than the floor of {floors[app]} (statuses {self.ledger.status_counts()})"
                )
            problems += [f"{app}: " + "; ".join(items[:8]) for items in (lost, double) if items]
            if not comparison.ok:
                problems.append(f"{app}: {comparison.summary()}")
        if error and problems:
            problems.append(error)
        if problems:
            raise ScenarioFailure(f"{self.row.scenario}: " + " | ".join(problems))

    def _record(
        self,
        results: Mapping[str, tuple[Comparison, list[str], list[str], int]],
        floors: Mapping[str, int],
    ) -> None:
        row = self.row
        row.faults_injected = len(row.faults)
        row.max_convergence_s = round(max(self.convergence, default=0.0), 2)
        for app in APPS:
            accepted = len(self.ledger.accepted(app))
            counts = AppRow(
                commands_sent=len(self.ledger.of(app)),
                commands_accepted=accepted,
                min_accepted=floors[app],
            )
            if app in results:
                comparison, lost, double, events = results[app]
                counts.events = events
                counts.lost = len(lost) + len(comparison.lost)
                counts.double_applied = len(double) + len(comparison.double_applied)
                counts.mismatched = len(comparison.mismatched)
                counts.passed = (
                    comparison.ok and not lost and not double and accepted >= floors[app]
                )
            row.apps[app] = counts
        row.passed = bool(results) and all(c.passed for c in row.apps.values())
        self.report.add(row)


def summary(comparisons: Mapping[str, Comparison]) -> str:
    return "; ".join(f"{app}: {c.summary()}" for app, c in comparisons.items())
