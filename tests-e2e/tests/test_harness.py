"""The harness checks itself: servers and processes start, die, restart and get cleaned up.

It uses a port block and stack directory of its own, so it never touches the session's system.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from tandem_e2e.config import E2EConfig, free_port
from tandem_e2e.report import AppRow, Report, ScenarioRow
from tandem_e2e.servers import Servers
from tandem_e2e.services import _LIVE, ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def selftest_config(e2e_config: E2EConfig, tmp_path_factory: pytest.TempPathFactory) -> E2EConfig:
    return dataclasses.replace(
        e2e_config,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        mongo_port=free_port(),
        redis_port=free_port(),
        stack_dir=tmp_path_factory.mktemp("stack-selftest"),
        logs_dir=tmp_path_factory.mktemp("logs-selftest"),
    )


def test_servers_start_kill_restart_and_stop(selftest_config: E2EConfig) -> None:
    servers = Servers(selftest_config)
    try:
        servers.up("redis", "mongo")
        assert servers.status() == {"kafka": "stopped", "mongo": "ready", "redis": "ready"}
        pid = servers.pids()["redis"]
        servers.kill("redis")
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
        assert servers.status()["redis"] == "stopped"
        servers.up("redis")
        assert servers.pids()["redis"] != pid
        assert servers.status()["redis"] == "ready"
    finally:
        servers.down()
    assert set(servers.status().values()) == {"stopped"}
    assert servers.pids() == {}
    assert [action for _, action, _ in servers.events].count("kill") == 1


def test_service_process_ready_kill_restart(selftest_config: E2EConfig) -> None:
    port = free_port()
    service = ServiceProcess(
        "dummy",
        "http.server",
        port,
        dict(os.environ),
        selftest_config.logs_dir,
        args=(str(port), "--bind", "127.0.0.1"),
        ready_path="/",
    )
    try:
        service.start()
        service.wait_ready(30)
        assert service in _LIVE
        first = service.pid
        service.kill()
        assert not service.running()
        assert service.returncode() == -signal.SIGKILL
        service.restart(30)
        assert service.running()
        assert service.pid != first
        assert service.ready()
    finally:
        service.stop()
    assert not service.running()
    assert service not in _LIVE
    assert "e2e start #2" in service.log_file.read_text()


def test_report_table_and_json(selftest_config: E2EConfig) -> None:
    report = Report(profile="quick", seed=7)
    ok = AppRow(commands_sent=3, commands_accepted=3, events=3, passed=True)
    report.add(
        ScenarioRow(
            "happy", max_convergence_s=0.5, passed=True, apps={"catalog": ok, "orders": AppRow(
                commands_sent=4, commands_accepted=4, events=5, passed=True
            )},
        )
    )  # fmt: skip
    report.add(
        ScenarioRow(
            "faulty",
            apps={"catalog": ok, "orders": AppRow(commands_sent=2, double_applied=1, lost=2)},
        )
    )
    table = report.table()
    lines = table.splitlines()
    assert any(ln.startswith("| happy ") and "| orders " in ln and "pass" in ln for ln in lines)
    faulty_orders = next(ln for ln in lines if ln.startswith("| faulty ") and "| orders " in ln)
    assert "FAIL" in faulty_orders
    assert "| TOTAL    | catalog |" in table
    assert "2/2" in next(ln for ln in lines if ln.startswith("| TOTAL ") and "catalog" in ln)
    assert "1/2" in next(ln for ln in lines if ln.startswith("| TOTAL ") and "orders" in ln)
    path = report.write(selftest_config.logs_dir)
    assert path.exists()
    totals = report.to_json()["totals"]
    assert (totals["lost"], totals["double_applied"]) == (2, 1)
    assert totals["apps"]["orders"] == {
        "commands_sent": 6, "commands_accepted": 4, "events": 5, "lost": 2, "double_applied": 1
    }  # fmt: skip
    assert totals["apps"]["catalog"]["events"] == 6


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
