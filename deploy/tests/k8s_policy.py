"""Validation and policy checks for rendered Kubernetes resources (used by test_k8s.py).

- Built-in kinds: `kubernetes-validate` (the Kubernetes OpenAPI schemas it ships), strict mode.
- KEDA ScaledObject: deploy/schemas/keda-scaledobject.schema.json (hand-written, see its
  README) with jsonschema's Draft 2020-12 validator.
- Policy: what a platform team asks of every workload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
CUSTOM_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "keda-scaledobject.schema.json"}
TANDEM_SERVICES = {
    "command-service": 8001,
    "query-service": 8002,
    "projector": 8003,
    "projector-orders": 8003,
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def validate_resource(resource: dict[str, Any], k8s_version: str) -> None:
    """Raise if the resource is invalid; unknown kinds without a schema raise too."""
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key in CUSTOM_SCHEMAS:
        schema = json.loads(CUSTOM_SCHEMAS[key].read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(resource)
        return
    kubernetes_validate.validate(resource, k8s_version, strict=True)


def validate_all(resources: list[dict[str, Any]], k8s_version: str) -> None:
    """Validate resources in order; the first invalid one raises."""
    for resource in resources:
        validate_resource(resource, k8s_version)


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def _runs_as_non_root(pod: dict[str, Any], container: dict[str, Any]) -> bool:
    own = (container.get("securityContext") or {}).get("runAsNonRoot")
    if own is not None:
        return bool(own)
    return bool((pod.get("securityContext") or {}).get("runAsNonRoot"))


def policy_violations(resources: list[dict[str, Any]]) -> list[str]:
    """Every problem found, as readable strings (empty when the resources comply)."""
    problems: list[str] = []
    for res in resources:
        if res.get("kind") not in WORKLOAD_KINDS:
            continue
        name = f"{res['kind']}/{res['metadata']['name']}"
        pod = pod_spec(res)
        containers = list(pod.get("initContainers") or []) + list(pod["containers"])
        for c in containers:
            where = f"{name} container {c['name']}"
            resources_ = c.get("resources") or {}
            if not (resources_.get("requests") or {}).get("cpu"):
                problems.append(f"{where}: no cpu request")
            if not (resources_.get("requests") or {}).get("memory"):
                problems.append(f"{where}: no memory request")
            if not (resources_.get("limits") or {}).get("memory"):
                problems.append(f"{where}: no memory limit")
            if not _runs_as_non_root(pod, c):
                problems.append(f"{where}: runAsNonRoot is not true")
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: capabilities are not all dropped")
            if res["kind"] in {"Deployment", "StatefulSet"}:
                if not c.get("livenessProbe"):
                    problems.append(f"{where}: no livenessProbe")
                if not c.get("readinessProbe"):
                    problems.append(f"{where}: no readinessProbe")
        if res["kind"] == "Deployment" and res["metadata"]["name"] in TANDEM_SERVICES:
            problems.extend(_tandem_service_violations(name, pod))
    return problems


def _tandem_service_violations(name: str, pod: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    (c,) = pod["containers"]
    sc = c.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: readOnlyRootFilesystem is not true")
    live = (c.get("livenessProbe") or {}).get("httpGet") or {}
    ready = (c.get("readinessProbe") or {}).get("httpGet") or {}
    if live.get("path") != "/healthz":
        problems.append(f"{name}: liveness probe is not GET /healthz")
    if ready.get("path") != "/readyz":
        problems.append(f"{name}: readiness probe is not GET /readyz")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    tmp = volumes.get(mounts.get("/tmp", ""), {})
    if "emptyDir" not in tmp:
        problems.append(f"{name}: /tmp is not an emptyDir")
    if not (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec")):
        problems.append(f"{name}: no preStop delay")
    if not pod.get("terminationGracePeriodSeconds"):
        problems.append(f"{name}: no terminationGracePeriodSeconds")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: service account token is mounted")
    return problems
