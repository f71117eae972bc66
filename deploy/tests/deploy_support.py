"""Paths and helpers the deployment checks share (a module of its own: test modules import it
by a name no other test folder uses, unlike ``conftest``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import yaml

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
