"""The root conftest refuses a test without a tier marker, since ``make test`` selects by tier
and would silently skip it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
MARKED = "import pytest\n\n@pytest.mark.unit\ndef test_marked() -> None:\n    assert True\n"
UNMARKED = "def test_forgotten() -> None:\n    assert True\n"


def _run(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "unit", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    markers = "\n".join(
        f"    {name}: tier" for name in ("unit", "integration", "e2e", "browser", "deploy")
    )
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\naddopts = --strict-markers\nmarkers =\n{markers}\n"
    )
    (tmp_path / "test_marked.py").write_text(MARKED)
    return tmp_path


def test_a_run_with_only_marked_tests_passes(project: Path) -> None:
    result = _run(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_an_unmarked_test_fails_collection_and_is_named(project: Path) -> None:
    (project / "test_unmarked.py").write_text(UNMARKED)
    result = _run(project)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "test_unmarked.py::test_forgotten" in output
    assert "without a tier marker" in output
