"""Kubernetes manifests: render every overlay with kustomize, validate offline, check policy."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_support import ENSURE_KUSTOMIZE, K8S, OVERLAYS, render
from k8s_policy import TANDEM_SERVICES, policy_violations, validate_all, validate_resource
from tandem.runtime.projector.served import Served, select
from tandem.runtime.projector.settings import ProjectorSettings

pytestmark = pytest.mark.deploy

# Oldest Kubernetes minor we support and the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def configmap(resources: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [
        r
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("tandem-config")
    ]
    return cm["data"]


# ------------------------------------------------------------------ rendering and schemas


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_every_overlay_renders_the_three_services(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    deployments = by_kind(rendered[target], "Deployment")
    services = by_kind(rendered[target], "Service")
    assert set(TANDEM_SERVICES) <= set(deployments)
    assert set(TANDEM_SERVICES) <= set(services)
    assert set(TANDEM_SERVICES) <= set(by_kind(rendered[target], "PodDisruptionBudget"))


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_rendered_resources_validate_offline(
    rendered: dict[str, list[dict[str, Any]]], target: str, k8s_version: str
) -> None:
    """Strict schema validation of every rendered resource (unknown fields are errors too)."""
    errors = []
    for res in rendered[target]:
        try:
            validate_resource(res, k8s_version)
        except (
            kubernetes_validate.ValidationError,
            kubernetes_validate.SchemaNotFoundError,
            jsonschema.ValidationError,
        ) as exc:
            errors.append(f"{res['kind']}/{res['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


def test_secret_template_validates() -> None:
    secret = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())
    kubernetes_validate.validate(secret, K8S_VERSIONS[0], strict=True)
    assert secret["metadata"]["name"] == "tandem-secrets"
    assert "TANDEM_JWT_SECRET" in secret["stringData"]


def test_prod_contains_the_keda_scaled_object_and_hpa(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    prod = rendered["prod"]
    scaled = by_kind(prod, "ScaledObject").values()
    assert len(scaled) == 2  # one per projector group
    assert {so["apiVersion"] for so in scaled} == {"keda.sh/v1alpha1"}
    (hpa,) = by_kind(prod, "HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "query-service",
    }


# ------------------------------------------------------------------ broken copies must fail


def _deployment(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return copy.deepcopy(by_kind(rendered["prod"], "Deployment")["command-service"])


def test_deployment_with_string_replicas_is_rejected(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    broken = _deployment(rendered)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="'two' is not of type"):
        validate_resource(broken, K8S_VERSIONS[0])


def test_deployment_with_unknown_field_is_rejected(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    broken = _deployment(rendered)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenessProbes"):
        validate_resource(broken, K8S_VERSIONS[0])


def test_deployment_without_containers_is_rejected(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    broken = _deployment(rendered)
    del broken["spec"]["template"]["spec"]["containers"]
    with pytest.raises(kubernetes_validate.ValidationError, match="containers"):
        validate_resource(broken, K8S_VERSIONS[0])


def test_broken_base_fails_the_whole_pipeline(kustomize: str, tmp_path: Path) -> None:
    """A broken file in a copy of deploy/k8s makes render + validate fail for each overlay."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    path = tree / "base" / "command-service.yaml"
    path.write_text(
        path.read_text().replace("  revisionHistoryLimit: 5\n", '  replicas: "two"\n', 1)
    )
    for overlay in OVERLAYS:
        resources = render(kustomize, tree / "overlays" / overlay)
        with pytest.raises(kubernetes_validate.ValidationError):
            validate_all(resources, K8S_VERSIONS[0])


def test_kustomization_with_missing_resource_fails_to_render(
    kustomize: str, tmp_path: Path
) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    (tree / "base" / "pdb.yaml").unlink()
    with pytest.raises(subprocess.CalledProcessError):
        render(kustomize, tree / "overlays" / "prod")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda so: so["spec"].__setitem__("maxReplicaCount", "twelve"), "'twelve'"),
        (lambda so: so["spec"].__setitem__("maxReplicas", 12), "maxReplicas"),
        (lambda so: so["spec"]["triggers"][0]["metadata"].pop("lagThreshold"), "lagThreshold"),
        (lambda so: so["spec"]["triggers"][0]["metadata"].__setitem__("lagThreshold", 5), "5"),
        (lambda so: so["spec"].pop("scaleTargetRef"), "scaleTargetRef"),
    ],
    ids=["string-max", "unknown-field", "no-lag-threshold", "int-metadata", "no-target"],
)
def test_broken_scaled_object_is_rejected(
    rendered: dict[str, list[dict[str, Any]]], mutate: Any, message: str
) -> None:
    broken = copy.deepcopy(next(iter(by_kind(rendered["prod"], "ScaledObject").values())))
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate_resource(broken, K8S_VERSIONS[0])


def test_unknown_custom_resource_is_not_waved_through() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_resource(unknown, K8S_VERSIONS[0])


# ------------------------------------------------------------------ policy


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_every_workload_follows_policy(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """Probes, resources, non-root, no privilege escalation; for the Tandem services also a
    read-only root filesystem, /healthz + /readyz probes, /tmp emptyDir and a preStop delay."""
    assert policy_violations(rendered[target]) == []


def test_policy_catches_a_non_compliant_deployment(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    broken = _deployment(rendered)
    pod = broken["spec"]["template"]["spec"]
    container = pod["containers"][0]
    del container["livenessProbe"], container["readinessProbe"], container["resources"]
    container["securityContext"] = {"readOnlyRootFilesystem": False}
    del pod["securityContext"]
    problems = "\n".join(policy_violations([broken]))
    for expected in (
        "no livenessProbe",
        "no readinessProbe",
        "no cpu request",
        "no memory limit",
        "runAsNonRoot is not true",
        "readOnlyRootFilesystem is not true",
        "allowPrivilegeEscalation",
    ):
        assert expected in problems


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_services_listen_on_the_conventional_ports(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    deployments = by_kind(rendered[target], "Deployment")
    services = by_kind(rendered[target], "Service")
    for name, port in TANDEM_SERVICES.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0]["containerPort"] == port
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["TANDEM_HTTP_PORT"] == str(port)
        assert services[name]["spec"]["ports"][0]["port"] == port
        refs = [next(iter(src.values()))["name"] for src in container["envFrom"]]
        assert refs[0].startswith("tandem-config")
        assert refs[1].startswith("tandem-secrets")  # the Secret overrides the ConfigMap


def served_by(deployment: dict[str, Any], config: dict[str, str]) -> Served:
    """What a projector Deployment serves: its env over the ConfigMap, as the process reads it."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {**config, **{e["name"]: e["value"] for e in container.get("env", [])}}
    settings = ProjectorSettings(
        **{
            k.removeprefix("TANDEM_").lower(): v
            for k, v in env.items()
            if k in {"TANDEM_APPS", "TANDEM_READ_MODELS"}
        }
    )
    return select(settings.load_apps(), settings)


def test_keda_scales_each_projector_group_on_its_own_lag(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """One ScaledObject per projector Deployment, watching the group and the topics that the
    Deployment's read-model set derives (a group name typed by hand would drift)."""
    prod = rendered["prod"]
    config = configmap(prod)
    partitions = int(config["TANDEM_PARTITIONS"])
    deployments = by_kind(prod, "Deployment")
    projectors = {n for n in deployments if n.startswith("projector")}
    assert projectors == {"projector", "projector-orders"}
    scaled = by_kind(prod, "ScaledObject")
    assert {so["spec"]["scaleTargetRef"]["name"] for so in scaled.values()} == projectors
    served_sets = []
    for so in scaled.values():
        spec = so["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        served = served_by(deployments[spec["scaleTargetRef"]["name"]], config)
        served_sets.append({rm.name for rm in served.read_models})
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == served.group_id
        assert [meta["topic"]] == served.topics
        assert meta["allowIdleConsumers"] == "false"
        assert meta["bootstrapServers"] == config["TANDEM_KAFKA_BOOTSTRAP_SERVERS"]
    # Between them, the projector groups serve every declared read model exactly once.
    every = [
        rm.name
        for app in ProjectorSettings(apps=config["TANDEM_APPS"].split(",")).load_apps()
        for rm in app.read_models
    ]
    assert sorted(n for names in served_sets for n in names) == sorted(every)


def test_prod_replicas_and_images(rendered: dict[str, list[dict[str, Any]]]) -> None:
    prod = by_kind(rendered["prod"], "Deployment")
    assert prod["command-service"]["spec"]["replicas"] >= 2
    # Autoscaled Deployments leave replicas to the HPA / KEDA.
    assert "replicas" not in prod["query-service"]["spec"]
    assert "replicas" not in prod["projector"]["spec"]
    for dep in prod.values():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1], image
        assert not image.endswith((":latest", ":dev")), image
    data = configmap(rendered["prod"])
    assert data["TANDEM_ENVIRONMENT"] == "production"
    assert "TANDEM_AUTH_DISABLED" not in data
    assert "w=majority" in data["TANDEM_MONGO_URL"]
    assert "replicaSet=" in data["TANDEM_MONGO_URL"]


def test_dev_runs_its_own_infrastructure(rendered: dict[str, list[dict[str, Any]]]) -> None:
    dev = rendered["dev"]
    statefulsets = by_kind(dev, "StatefulSet")
    services = by_kind(dev, "Service")
    assert {"kafka", "mongo", "redis"} <= set(statefulsets)
    assert {"kafka", "mongo", "redis"} <= set(services)
    assert {"kafka-topics", "mongo-init"} <= set(by_kind(dev, "Job"))
    assert statefulsets["kafka"]["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "apache/kafka:"
    )
    data = configmap(dev)
    host = data["TANDEM_KAFKA_BOOTSTRAP_SERVERS"].split(":")[0]
    assert host in services
    assert all(r["metadata"].get("namespace") in (None, "tandem-dev") for r in dev)
    assert any(
        r["kind"] == "Secret" and r["metadata"]["name"].startswith("tandem-secrets") for r in dev
    )
    assert not any(r["kind"] == "Secret" for r in rendered["prod"])


def test_ensure_kustomize_is_idempotent(kustomize: str) -> None:
    """Once built, the script only prints the path: it builds nothing and replaces nothing."""
    built = os.stat(kustomize)
    proc = subprocess.run(
        ["bash", str(ENSURE_KUSTOMIZE)], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == kustomize
    assert "building" not in proc.stderr
    again = os.stat(kustomize)
    assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    version = subprocess.run(
        [kustomize, "version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert version.stdout.strip().startswith("v5.")
