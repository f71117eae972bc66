"""docker-compose.yml and compose.dev.yaml: Compose Specification schema + policy.

The schema check runs check-jsonschema's CLI with the Compose Specification schema that
check-jsonschema ships (`--builtin-schema vendor.compose-spec`); no network is used.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import ROOT

pytestmark = pytest.mark.deploy

COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_DEV = ROOT / "compose.dev.yaml"
SERVICES = {
    "command-service": 8001,
    "query-service": 8002,
    "projector": 8003,
    "projector-orders": 8003,
}
# The image (build target) of each service: the orders projector is the projector image again.
TARGETS = {name: name.removesuffix("-orders") for name in SERVICES}
ONE_SHOT = {"kafka-init", "mongo-init"}


def check_compose_schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_dev() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_DEV.read_text())


def test_compose_files_match_the_compose_specification() -> None:
    proc = check_compose_schema(COMPOSE, COMPOSE_DEV)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # an unknown key on a service
        (
            "    stop_grace_period: 60s\n",
            "    stop_grace_period: 60s\n    scale_out: 4\n",
            "scale_out",
        ),
        # a wrong type: a command is a string or a list, not a mapping
        ('    command: ["run"]\n', "    command: {run: true}\n", "command"),
        # a wrong depends_on condition
        (
            "condition: service_completed_successfully",
            "condition: service_finished",
            "service_finished",
        ),
    ],
    ids=["unknown-key", "wrong-type", "bad-condition"],
)
def test_broken_compose_file_is_rejected(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = COMPOSE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    proc = check_compose_schema(broken)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr


def test_broken_dev_override_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "compose.dev.yaml"
    broken.write_text(COMPOSE_DEV.read_text().replace("action: rebuild", "action: rebuilt", 1))
    proc = check_compose_schema(broken)
    assert proc.returncode != 0
    assert "rebuilt" in proc.stdout + proc.stderr


def test_infrastructure_uses_official_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka-init"]["image"] == services["kafka"]["image"]
    assert services["mongo"]["image"].startswith("mongo:")
    assert services["mongo-init"]["image"] == services["mongo"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, combined mode
    assert "--replSet" in services["mongo"]["command"]
    init = "\n".join(services["kafka-init"]["command"])
    assert "kafka-topics.sh" in init
    for topic in ("tandem.product.events", "tandem.product.events.dlq"):
        assert topic in init
    assert "rs.initiate" in "\n".join(services["mongo-init"]["command"])


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no"
            continue
        assert svc.get("healthcheck", {}).get("test"), name


def test_tandem_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        deps = compose["services"][name]["depends_on"]
        for infra in ("kafka", "mongo", "redis"):
            assert deps[infra]["condition"] == "service_healthy", (name, infra)
        for init in ONE_SHOT:
            assert deps[init]["condition"] == "service_completed_successfully", (name, init)
    assert compose["services"]["kafka-init"]["depends_on"]["kafka"]["condition"] == (
        "service_healthy"
    )
    assert compose["services"]["mongo-init"]["depends_on"]["mongo"]["condition"] == (
        "service_healthy"
    )


def test_tandem_services_are_configured_by_environment_only(compose: dict[str, Any]) -> None:
    for name, port in SERVICES.items():
        svc = compose["services"][name]
        assert "env_file" not in svc
        assert "volumes" not in svc
        assert "configs" not in svc
        env = svc["environment"]
        assert all(key.startswith("TANDEM_") for key in env), name
        assert env["TANDEM_HTTP_PORT"] == str(port)
        assert env["TANDEM_HTTP_HOST"] == "0.0.0.0"
        assert env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert "replicaSet=rs0" in env["TANDEM_MONGO_URL"]
        assert svc["read_only"] is True
        assert svc["build"]["target"] == TARGETS[name]
        assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert str(port) in "".join(svc["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["projector", "projector-orders"])
def test_projector_is_scalable(
    name: str, compose: dict[str, Any], compose_dev: dict[str, Any]
) -> None:
    for doc in (compose, compose_dev):
        projector = doc["services"][name]
        assert "container_name" not in projector
        assert "ports" not in projector  # a fixed host port would clash at --scale N
    assert "hostname" not in compose["services"][name]


def test_live_page_is_published(compose: dict[str, Any]) -> None:
    ports = compose["services"]["query-service"]["ports"]
    assert any(re.fullmatch(r"\$\{TANDEM_QUERY_PORT:-\d+\}:8002", p) for p in ports), ports


def test_named_volumes_hold_all_state(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for svc in compose["services"].values():
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"bind mount {mount}"
            used.add(source)
    assert used == declared
    assert {"kafka-data", "mongo-data", "redis-data"} <= declared


def test_dev_override(compose_dev: dict[str, Any]) -> None:
    services = compose_dev["services"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["TANDEM_ENVIRONMENT"] == "development"
        assert env["TANDEM_AUTH_DISABLED"] == "true"
        assert services[name]["develop"]["watch"]
    for infra in ("kafka", "mongo", "redis"):
        assert all(p.startswith("127.0.0.1:") for p in services[infra]["ports"])
    assert services["projector-dlq"]["profiles"] == ["tools"]
