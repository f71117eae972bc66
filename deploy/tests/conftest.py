"""Shared fixtures for the deployment checks: paths, kustomize, rendered overlays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

# The test modules import the helper module beside this file (k8s_policy); pytest's
# importlib mode does not put this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
ENSURE_KUSTOMIZE = DEPLOY / "tools" / "ensure-kustomize.sh"


def tool_path(name: str) -> str | None:
    """A console script installed in this environment (the venv's bin), else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


@pytest.fixture(scope="session")
def kustomize() -> str:
    """Path of kustomize, built once into .cache/tandem/bin by deploy/tools/ensure-kustomize.sh."""
    proc = subprocess.run(
        ["bash", str(ENSURE_KUSTOMIZE)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ},
    )
    if proc.returncode != 0:
        pytest.fail(f"ensure-kustomize.sh failed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def render(kustomize: str, path: Path) -> list[dict[str, Any]]:
    """`kustomize build path` as a list of resources; raises CalledProcessError on failure."""
    proc = subprocess.run(
        [kustomize, "build", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(kustomize: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay (and the base) rendered once per session."""
    out = {"base": render(kustomize, K8S / "base")}
    for overlay in OVERLAYS:
        out[overlay] = render(kustomize, K8S / "overlays" / overlay)
    return out


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
