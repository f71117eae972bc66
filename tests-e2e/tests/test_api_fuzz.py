"""schemathesis (v4 CLI) against both services' OpenAPI schemas: every check, a valid token.

No 5xx, every response conforming to its schema; then the projections must still equal the fold
of whatever the fuzzer managed to write.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from tandem_e2e.scenario import ScenarioRun
from tandem_e2e.system import System

pytestmark = pytest.mark.e2e


def run_schemathesis(system: System, service: str, scopes: tuple[str, ...]) -> str:
    target = system.service(service)
    out_dir = system.config.results_dir / f"schemathesis-{service}"
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{target.base_url}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {system.token(*scopes)}",
        "--max-examples", str(system.config.profile.schemathesis_max_examples),
        "--seed", str(system.config.seed),
        "--request-timeout", "20",
        # GET /api/products/{id} may long-poll up to wait_ms_max (10 s) by contract.
        "--max-response-time", "15",
        "--workers", "2",
        "--report", "junit", "--report-dir", str(out_dir),
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tandem_e2e.schemathesis_hooks"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    output = proc.stdout + proc.stderr
    (system.config.logs_dir / f"schemathesis-{service}.txt").write_text(output)
    assert proc.returncode == 0, f"schemathesis found failures on {service}:\n{output[-6000:]}"
    return output


# The full profile's 150 examples per operation include min_version reads that long-poll up to
# wait_ms (10 s) by contract, so query-service alone takes minutes: bound by the subprocess's.
@pytest.mark.timeout(960)
@pytest.mark.parametrize(
    ("service", "scopes"),
    [
        ("command-service", ("products:write", "orders:write")),
        ("query-service", ("products:read", "orders:read")),
    ],
)
async def test_schemathesis(
    service: str, scopes: tuple[str, ...], scenario: ScenarioRun, system: System
) -> None:
    scenario.row.scenario = f"schemathesis {service}"
    output = run_schemathesis(system, service, scopes)
    cases = re.findall(r"(\d+) generated", output)
    scenario.note(f"{cases[-1] if cases else '?'} generated cases, 0 failures")
    # The fuzzer's requests are not in the ledger (schemathesis checks their answers itself).
    await scenario.finish(min_accepted={})
