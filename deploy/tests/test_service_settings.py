"""Every deploy configuration starts the services: their settings parse from its environment.

Schema checks say a compose file or a manifest is well-formed; they cannot say that the values
in it are ones the services accept. A comma-separated list that the settings read as JSON was
exactly such a crash-at-start, so each service's settings class is built here from the
environment each configuration gives it (compose with its defaults, the dev override, and the
ConfigMap and Secret template of every Kubernetes overlay).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import K8S, ROOT
from pydantic_settings import BaseSettings
from tandem.runtime.command.settings import CommandServiceSettings
from tandem.runtime.projector.served import select
from tandem.runtime.projector.settings import ProjectorSettings
from tandem.runtime.query.settings import QueryServiceSettings

pytestmark = pytest.mark.deploy

SETTINGS: dict[str, type[BaseSettings]] = {
    "command-service": CommandServiceSettings,
    "query-service": QueryServiceSettings,
    "projector": ProjectorSettings,
    "projector-orders": ProjectorSettings,
}
SECRET = "0123456789abcdef" * 4  # what an operator puts in TANDEM_JWT_SECRET
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with nothing exported,
    except the one variable compose requires (the JWT secret)."""

    def one(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if name == "TANDEM_JWT_SECRET":
            return SECRET
        if kind == "?":
            raise AssertionError(f"compose requires {name}: {default}")
        return default or ""

    return _VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose_env(*paths: Path) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in paths:
        for name, service in yaml.safe_load(path.read_text())["services"].items():
            if name in SETTINGS:
                env = {k: interpolate(str(v)) for k, v in service.get("environment", {}).items()}
                merged.setdefault(name, {}).update(env)
    return merged


def build(settings_type: type[BaseSettings], env: dict[str, str], monkeypatch: Any) -> Any:
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("TANDEM_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return settings_type()


@pytest.mark.parametrize(
    "files",
    [("docker-compose.yml",), ("docker-compose.yml", "compose.dev.yaml")],
    ids=["compose", "compose+dev"],
)
def test_compose_environment_starts_every_service(files: tuple[str, ...], monkeypatch: Any) -> None:
    envs = compose_env(*(ROOT / f for f in files))
    assert set(envs) == set(SETTINGS)
    for name, env in envs.items():
        settings = build(SETTINGS[name], env, monkeypatch)
        assert settings.kafka_bootstrap_servers == env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"]
    command = build(CommandServiceSettings, envs["command-service"], monkeypatch)
    # The live page (query-service, port 8002) must be allowed to send commands.
    assert "http://localhost:8002" in command.allowed_origins


def k8s_env(resources: list[dict[str, Any]], service: str) -> dict[str, str]:
    """The environment Kubernetes gives ``service``'s container: ConfigMap, then the Secret
    (template, with a real secret in place of its placeholder), then the container's ``env``."""
    (config,) = [
        r["data"]
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("tandem-config")
    ]
    secret = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())["stringData"]
    (deployment,) = [
        r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == service
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    own = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return {**config, **secret, "TANDEM_JWT_SECRET": SECRET, **own}


@pytest.mark.parametrize("target", ["base", "dev", "prod"])
def test_kubernetes_environment_starts_every_service(
    rendered: dict[str, list[dict[str, Any]]], target: str, monkeypatch: Any
) -> None:
    for name, settings_type in SETTINGS.items():
        env = k8s_env(rendered[target], name)
        settings = build(settings_type, env, monkeypatch)
        assert settings.environment == env["TANDEM_ENVIRONMENT"]
    if target == "prod":
        prod = build(QueryServiceSettings, k8s_env(rendered["prod"], "query-service"), monkeypatch)
        assert prod.topic_replication_factor == 3
        assert prod.cors_origins == ["https://tandem.example.com"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("http://a", ["http://a"]),
        ("http://a, http://b", ["http://a", "http://b"]),
        ('["http://a", "http://b"]', ["http://a", "http://b"]),
    ],
)
def test_list_settings_read_commas_or_json(raw: str, expected: list[str], monkeypatch: Any) -> None:
    settings = build(QueryServiceSettings, {"TANDEM_CORS_ORIGINS": raw}, monkeypatch)
    assert settings.cors_origins == expected


def test_a_projector_without_topics_refuses_to_start(monkeypatch: Any) -> None:
    with pytest.raises(ValueError, match="topics"):
        build(ProjectorSettings, {"TANDEM_TOPICS": ""}, monkeypatch)


@pytest.mark.parametrize(
    "files",
    [("docker-compose.yml",), ("docker-compose.yml", "compose.dev.yaml")],
    ids=["compose", "compose+dev"],
)
def test_compose_projector_groups_split_the_read_models(
    files: tuple[str, ...], monkeypatch: Any
) -> None:
    """Each projector service serves its own read-model set in its own group; together they
    serve every read model of the deployment's apps once."""
    envs = compose_env(*(ROOT / f for f in files))
    projectors = {
        n: build(ProjectorSettings, envs[n], monkeypatch) for n in envs if n.startswith("projector")
    }
    served = {n: select(s.load_apps(), s) for n, s in projectors.items()}
    assert len({s.group_id for s in served.values()}) == len(served) == 2
    names = sorted(rm.name for s in served.values() for rm in s.read_models)
    apps = next(iter(projectors.values())).load_apps()
    assert names == sorted(rm.name for app in apps for rm in app.read_models)
    assert {a.name for a in apps} == {"catalog", "orders"}
