"""The deployment files (contract section 9) are valid and say what docs/deployment.md says:
Kubernetes manifests against the Kubernetes JSON schemas (kubernetes-validate ships them,
offline), the compose file through Compose's own validator, and the Dockerfile's shape."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())  # the oldest we claim, and the newest
SECRET_NAMES = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "GATEWAY_JWT_SECRET"}
SECRET_NAMES |= {"GATEWAY_WEBHOOK_SECRET", "GATEWAY_HEALTH_TOKEN", "REDIS_PASSWORD"}


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def test_every_kubernetes_manifest_is_valid_for_its_kind_strictly() -> None:
    resources = manifests()
    assert set(resources) >= {
        "Deployment/gateway",
        "Deployment/gateway-worker",
        "Service/gateway",
        "HorizontalPodAutoscaler/gateway",
        "PodDisruptionBudget/gateway",
        "ConfigMap/gateway-config",
        "Job/gateway-migrate",
    }
    for name, resource in resources.items():
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{name} against Kubernetes {version}: {error}")


def test_the_validator_rejects_a_misspelled_field() -> None:
    deployment = manifests()["Deployment/gateway"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = broken["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_lists_every_long_lived_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "migrate-job.yaml"}
    assert listed == on_disk  # the migration Job runs before a rollout, not with it


def _container(resource: dict[str, Any]) -> dict[str, Any]:
    containers = resource["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_gateway_pods_probe_healthz_and_readyz_and_outlive_their_drain() -> None:
    resources = manifests()
    gateway, config = resources["Deployment/gateway"], resources["ConfigMap/gateway-config"]["data"]
    container = _container(gateway)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    grace = gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain_s, accept_s = float(config["GATEWAY_DRAIN_S"]), float(config["GATEWAY_DRAIN_ACCEPT_S"])
    assert accept_s < drain_s < grace
    # The balancer must see /readyz fail within the accept window: period x failures.
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < accept_s
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_secrets_are_only_referenced_and_pods_run_as_non_root() -> None:
    for name, resource in manifests().items():
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        pod = resource["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        container = _container(resource)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        for variable in container.get("env", []):
            if variable["name"] in SECRET_NAMES:
                assert "value" not in variable, f"{name}: {variable['name']} is a literal"
                assert variable["valueFrom"]["secretKeyRef"]["name"] == "gateway-secrets", name
    config = manifests()["ConfigMap/gateway-config"]["data"]
    assert not SECRET_NAMES & set(config), "no secret in the ConfigMap"


def test_selectors_match_the_pods_they_mean() -> None:
    resources = manifests()
    web_labels = resources["Deployment/gateway"]["spec"]["template"]["metadata"]["labels"]
    service_selector = resources["Service/gateway"]["spec"]["selector"]
    pdb_selector = resources["PodDisruptionBudget/gateway"]["spec"]["selector"]["matchLabels"]
    worker_labels = resources["Deployment/gateway-worker"]["spec"]["template"]["metadata"]["labels"]
    for selector in (service_selector, pdb_selector):
        assert selector.items() <= web_labels.items()
        assert not selector.items() <= worker_labels.items(), "the worker gets no web traffic"
    target = resources["HorizontalPodAutoscaler/gateway"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "gateway")
    metric = resources["HorizontalPodAutoscaler/gateway"]["spec"]["metrics"][0]
    assert metric["resource"]["name"] == "cpu"


def test_resource_requests_follow_the_benchmark() -> None:
    container = _container(manifests()["Deployment/gateway"])
    workers = int(manifests()["ConfigMap/gateway-config"]["data"]["WEB_CONCURRENCY"])
    memory = container["resources"]["requests"]["memory"]
    mebibytes = int(re.fullmatch(r"(\d+)Mi", memory).group(1))  # type: ignore[union-attr]
    assert mebibytes >= workers * 130 + 60, "about 130 MiB per worker (docs/deployment.md) plus the master"
    assert container["resources"]["requests"]["cpu"] == "1" and workers == 2, "two workers per core"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_passes_compose_validation() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (scripts/test-deps.sh installs it)")
    env = {**os.environ, "DJANGO_SECRET_KEY": "validation-only"}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"], cwd=COMPOSE.parent, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=COMPOSE.parent,
        env={k: v for k, v in env.items() if k != "DJANGO_SECRET_KEY"},
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr, "a missing secret stops compose"


def test_compose_runs_the_whole_stack_and_mounts_files_that_exist() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    expected = {"gateway", "worker", "migrate", "postgres", "redis", "prometheus", "alertmanager", "grafana"}
    assert expected <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}, which is missing"
    gateway = services["gateway"]
    grace = int(gateway["stop_grace_period"].rstrip("s"))
    assert grace > float(gateway["environment"]["GATEWAY_DRAIN_S"])
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    prometheus = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/gateway.rules.yml"]


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_on_healthz() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, "multi-stage"
    final = dockerfile[dockerfile.rindex("\nFROM ") :]
    user = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)\n", final, re.MULTILINE | re.DOTALL)
    assert healthcheck and "/healthz" in healthcheck.group(0)
    assert 'CMD ["gunicorn", "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"]' in final
    copied = re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.MULTILINE)
    assert all((ROOT / path).exists() for path in copied), copied
