"""Shared fixtures for the deployment checks: paths, kustomize, rendered overlays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The test modules import the helper module beside this file (k8s_policy); pytest's
# importlib mode does not put this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_support import ENSURE_KUSTOMIZE, K8S, OVERLAYS, render


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


@pytest.fixture(scope="session")
def rendered(kustomize: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay (and the base) rendered once per session."""
    out = {"base": render(kustomize, K8S / "base")}
    for overlay in OVERLAYS:
        out[overlay] = render(kustomize, K8S / "overlays" / overlay)
    return out


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
