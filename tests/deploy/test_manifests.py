"""`loopml emit`: the Dockerfile and Kubernetes manifests parse and carry what Kubernetes and Prometheus need.

No cluster: the checks are the API server's required fields and the cross-references between objects
(selector -> template labels, Service -> container port, HPA -> Deployment, probes -> v2 health routes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from loopml.cli import app
from loopml.deploy.manifests import (
    Resources,
    kubernetes_name,
    render_dockerfile,
    render_kubernetes,
    write_emit,
)
from loopml.errors import InvalidInput

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
REQUIRED_SPEC = {
    "Deployment": ("selector", "template"),
    "Service": ("ports", "selector"),
    "HorizontalPodAutoscaler": ("scaleTargetRef", "maxReplicas"),
}


def emitted(tmp_path: Path, *args: str) -> dict[str, dict[str, Any]]:
    """Run `loopml emit NAME --kind k8s` and parse every YAML document it wrote, by kind."""
    result = CliRunner().invoke(app, ["emit", "bike-demand", "--kind", "k8s", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(tmp_path.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in objects
            objects[document["kind"]] = document
    return objects


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def test_every_object_has_the_fields_the_api_server_requires(tmp_path: Path) -> None:
    objects = emitted(tmp_path)
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    versions = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2"}
    for kind, document in objects.items():
        assert document["apiVersion"] == versions[kind]
        assert DNS_LABEL.fullmatch(document["metadata"]["name"])
        assert len(document["metadata"]["name"]) <= 63
        for key in REQUIRED_SPEC[kind]:
            assert key in document["spec"], (kind, key)
        for key, value in document["metadata"].get("labels", {}).items():
            assert isinstance(value, str) and len(value) <= 63, key


def test_deployment_selector_matches_template_labels_and_service(tmp_path: Path) -> None:
    objects = emitted(tmp_path, "--replicas", "3")
    deployment, service = objects["Deployment"], objects["Service"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["replicas"] == 3
    ports = {p["containerPort"] for p in container(deployment)["ports"]}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [9000]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_probes_hit_the_v2_health_routes_on_a_declared_port(tmp_path: Path) -> None:
    serve = container(emitted(tmp_path)["Deployment"])
    names = {p["name"] for p in serve["ports"]} | {p["containerPort"] for p in serve["ports"]}
    assert serve["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert serve[probe]["httpGet"]["port"] in names


def test_container_reads_its_spec_from_the_shared_store(tmp_path: Path) -> None:
    objects = emitted(tmp_path, "--image", "registry.example/loopml:1.2", "--database-secret", "pg-url")
    serve = container(objects["Deployment"])
    assert serve["image"] == "registry.example/loopml:1.2"
    command = serve["command"]
    assert command[:2] == ["loopml", "serve"]
    assert command[command.index("--deployments") + 1] == "bike-demand"
    assert command[command.index("--port") + 1] == "9000"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - a container must listen on its pod IP
    env = {item["name"]: item for item in serve["env"]}
    assert env["LOOPML_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg-url", "key": "url"}
    assert "value" not in env["LOOPML_DATABASE_URL"]  # the URL holds a password: never inline
    assert env["LOOPML_ARTIFACT_ROOT"]["value"] == "s3://loopml-artifacts"
    assert serve["resources"]["requests"]["cpu"]  # the HPA's utilization is relative to the request
    assert serve["resources"]["limits"]["memory"]


def test_autoscaler_targets_the_deployment_on_cpu(tmp_path: Path) -> None:
    objects = emitted(tmp_path, "--replicas", "2")
    spec = objects["HorizontalPodAutoscaler"]["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": objects["Deployment"]["apiVersion"],
        "kind": "Deployment",
        "name": objects["Deployment"]["metadata"]["name"],
    }
    assert spec["minReplicas"] == 2 <= spec["maxReplicas"]
    [metric] = spec["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_prometheus_scrape_annotations_on_pods_and_service(tmp_path: Path) -> None:
    objects = emitted(tmp_path)
    expected = {"prometheus.io/scrape": "true", "prometheus.io/port": "9000", "prometheus.io/path": "/metrics"}
    pod = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert expected.items() <= pod.items()
    assert expected.items() <= objects["Service"]["metadata"]["annotations"].items()


def test_dockerfile_installs_loopml_and_serves_with_a_healthcheck(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["emit", "bike-demand", "--kind", "docker", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in (tmp_path / "Dockerfile").read_text().splitlines() if line and line[0] != "#"]
    instructions = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert instructions[0] == "FROM"
    for instruction in ("RUN", "EXPOSE", "HEALTHCHECK", "CMD", "USER"):
        assert instruction in instructions
    text = "\n".join(lines)
    assert re.search(r"RUN pip install [^\n]*loopml\[postgres,s3\]", text)
    assert "EXPOSE 9000" in text
    assert "/v2/health/ready" in text[text.index("HEALTHCHECK") :]
    assert '"serve", "--deployments", "bike-demand"' in text.splitlines()[-1]


def test_names_become_dns_labels_and_bad_arguments_are_refused() -> None:
    assert kubernetes_name("Bike_Demand.v2") == "loopml-bike-demand-v2"
    assert len(kubernetes_name("x" * 100)) == 63
    with pytest.raises(InvalidInput, match="Kubernetes name"):
        kubernetes_name("___")
    with pytest.raises(InvalidInput, match="replicas"):
        render_kubernetes("bike", replicas=0)
    with pytest.raises(InvalidInput, match="max_replicas"):
        render_kubernetes("bike", replicas=3, max_replicas=2)
    with pytest.raises(InvalidInput, match="port"):
        render_dockerfile("bike", port=70000)
    with pytest.raises(InvalidInput, match="emit kind"):
        write_emit("helm", "bike", "out")


def test_render_kubernetes_takes_custom_resources() -> None:
    [deployment, *_] = render_kubernetes("bike", resources=Resources(cpu_request="1", memory_limit="4Gi"))
    resources = container(deployment)["resources"]
    assert resources["requests"]["cpu"] == "1"
    assert resources["limits"]["memory"] == "4Gi"
