"""Session fixtures of the e2e tier: one system for the session, one report, one row per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tandem_e2e.config import E2EConfig
from tandem_e2e.report import Report
from tandem_e2e.scenario import ScenarioRun
from tandem_e2e.system import System

_REPORT = pytest.StashKey[Report]()
_CONFIG = pytest.StashKey[E2EConfig]()


def pytest_configure(config: pytest.Config) -> None:
    e2e = E2EConfig.from_env()
    config.stash[_CONFIG] = e2e
    config.stash[_REPORT] = Report(profile=e2e.profile.name, seed=e2e.seed)


def pytest_report_header(config: pytest.Config) -> list[str]:
    e2e = config.stash[_CONFIG]
    return [
        f"tandem e2e: profile={e2e.profile.name} seed={e2e.seed} "
        f"(replay with TANDEM_E2E_SEED={e2e.seed} TANDEM_E2E_PROFILE={e2e.profile.name}); "
        f"kafka={e2e.kafka_bootstrap} mongo={e2e.mongo_url} redis={e2e.redis_url} "
        f"stack={e2e.stack_dir}"
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    report = config.stash.get(_REPORT, None)
    if report is None or not report.rows:
        return
    e2e = config.stash[_CONFIG]
    path = report.write(e2e.results_dir)
    terminalreporter.write_sep("=", "tandem reliability report")
    terminalreporter.write_line(report.table())
    terminalreporter.write_line(f"JSON: {path}  logs: {e2e.logs_dir}")
    terminalreporter.write_line(
        f"replay: TANDEM_E2E_SEED={e2e.seed} TANDEM_E2E_PROFILE={e2e.profile.name}"
    )


@pytest.fixture(scope="session")
def e2e_config(pytestconfig: pytest.Config) -> E2EConfig:
    return pytestconfig.stash[_CONFIG]


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> Report:
    return pytestconfig.stash[_REPORT]


@pytest.fixture(scope="session")
def system_sync(e2e_config: E2EConfig) -> Iterator[System]:
    system = System(e2e_config)  # also registers close() with atexit, for a killed session
    try:
        system.start()
        yield system
    finally:
        system.close()  # even when start() or a test fails


@pytest.fixture(scope="session")
async def system(system_sync: System) -> AsyncIterator[System]:
    yield system_sync
    await system_sync.close_mongo()


@pytest.fixture
async def scenario(
    system: System, report: Report, request: pytest.FixtureRequest
) -> AsyncIterator[ScenarioRun]:
    # A previous scenario that failed mid-fault may have left a server or service down.
    system.ensure_all_running()
    name = request.node.name.removeprefix("test_")
    yield ScenarioRun(system, report, name)
    system.ensure_all_running()
