"""Files that take serving replicas off one machine: a Dockerfile and Kubernetes manifests.

The replicas they describe are stateless: each reads its deployment spec from the shared metadata store
(`LOOPML_DATABASE_URL`, from a Secret) and fetches model packages from the shared artifact store
(`LOOPML_ARTIFACT_ROOT`). Rendering is pure (text and plain dicts); only `write_emit` touches the disk.

    write_emit("k8s", "bike-demand", "deploy/k8s", image="registry.example/loopml:0.1.0", replicas=3)
    kubectl apply -f deploy/k8s
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopml.errors import InvalidInput

__all__ = [
    "DEFAULT_IMAGE",
    "EMIT_KINDS",
    "SERVING_PORT",
    "Resources",
    "kubernetes_name",
    "render_dockerfile",
    "render_kubernetes",
    "write_emit",
]

SERVING_PORT = 9000
EMIT_KINDS = ("docker", "k8s")
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
CACHE_DIR = "/var/lib/loopml"
RUN_AS_USER = 10001


def _default_image() -> str:
    from loopml import __version__

    return f"loopml:{__version__}"


DEFAULT_IMAGE = _default_image()
"""The tag the emitted Dockerfile is meant to be built as (`docker build -t loopml:<version> DIR`)."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class Resources:
    """CPU and memory requests and limits of one replica (Kubernetes quantities). The HPA scales on CPU
    utilization relative to `cpu_request`, so a request is always set."""

    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"


def kubernetes_name(deployment: str) -> str:
    """`loopml-<deployment>` as a DNS-1123 label: lower case, other characters become `-`, at most 63 long."""
    slug = re.sub(r"[^a-z0-9-]+", "-", deployment.lower()).strip("-")
    name = f"loopml-{slug}"[:63].rstrip("-")
    if not slug or not _DNS_LABEL.fullmatch(name):
        raise InvalidInput(f"deployment name {deployment!r} gives no valid Kubernetes name; use letters and digits")
    return name


def serve_command(deployment: str, port: int = SERVING_PORT) -> list[str]:
    """The replica's command: serve `deployment` (spec from the shared store) on every interface."""
    return ["loopml", "serve", "--deployments", deployment, "--host", "0.0.0.0", "--port", str(port)]  # noqa: S104


def render_dockerfile(
    deployment: str,
    *,
    port: int = SERVING_PORT,
    python_version: str = "3.11",
    requirement: str | None = None,
) -> str:
    """A Dockerfile for a serving replica of `deployment`: loopml with the PostgreSQL and S3 extras, a
    non-root user, the v2 readiness route as HEALTHCHECK. `requirement` overrides the pip requirement
    (default `loopml[postgres,s3]==<this version>`)."""
    _check_port(port)
    from loopml import __version__

    spec = requirement or f"loopml[postgres,s3]=={__version__}"
    command = ", ".join(f'"{part}"' for part in serve_command(deployment, port))
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}{READY_PATH}', timeout=2).status != 200)"
    )
    return f"""\
# A loopml serving replica for deployment {deployment!r}. It reads its deployment spec from the shared metadata
# store and model packages from the shared artifact store: pass LOOPML_DATABASE_URL and LOOPML_ARTIFACT_ROOT.
#   docker build -t {_default_image()} .
#   docker run -p {port}:{port} -e LOOPML_DATABASE_URL=postgresql+psycopg://... \\
#     -e LOOPML_ARTIFACT_ROOT=s3://... {_default_image()}
FROM python:{python_version}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    LOOPML_HOME={CACHE_DIR}

RUN pip install --no-cache-dir "{spec}" \\
    && useradd --system --uid {RUN_AS_USER} --home-dir {CACHE_DIR} --create-home loopml

USER {RUN_AS_USER}
WORKDIR {CACHE_DIR}
EXPOSE {port}

HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "{probe}"]

CMD [{command}]
"""


def render_kubernetes(
    name: str,
    image: str = DEFAULT_IMAGE,
    replicas: int = 2,
    port: int = SERVING_PORT,
    database_secret: str = "loopml-database",  # noqa: S107 - the name of a Kubernetes Secret, not a secret
    artifact_root: str = "s3://loopml-artifacts",
    *,
    database_secret_key: str = "url",  # noqa: S107 - a key inside that Secret
    max_replicas: int | None = None,
    cpu_utilization: int = 70,
    resources: Resources | None = None,
    namespace: str | None = None,
) -> list[dict[str, Any]]:
    """The Deployment, Service and HorizontalPodAutoscaler (autoscaling/v2, on CPU) of `name`'s replicas.

    The Secret `database_secret` must hold the metadata store URL under `database_secret_key`; it is not
    emitted (it holds a password). The HPA scales between `replicas` and `max_replicas` (default 4x).
    """
    if replicas < 1:
        raise InvalidInput(f"replicas must be at least 1, got {replicas}")
    _check_port(port)
    top = max_replicas if max_replicas is not None else 4 * replicas
    if top < replicas:
        raise InvalidInput(f"max_replicas ({top}) must be at least replicas ({replicas})")
    if not 1 <= cpu_utilization <= 100:
        raise InvalidInput(f"cpu_utilization must be a percentage in 1..100, got {cpu_utilization}")
    if not _DNS_LABEL.fullmatch(database_secret):
        raise InvalidInput(f"database_secret must be a Kubernetes object name, got {database_secret!r}")
    if not image.strip():
        raise InvalidInput("image must not be empty")
    sized = resources or Resources()
    object_name = kubernetes_name(name)
    selector = {"app.kubernetes.io/name": "loopml-serving", "app.kubernetes.io/instance": object_name}
    labels = {**selector, "app.kubernetes.io/component": "serving", "app.kubernetes.io/managed-by": "loopml"}
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": METRICS_PATH}

    def metadata(annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": object_name, "labels": dict(labels)}
        if namespace is not None:
            meta["namespace"] = namespace
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    container = {
        "name": "serve",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": serve_command(name, port),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {
                "name": "LOOPML_DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": database_secret, "key": database_secret_key}},
            },
            {"name": "LOOPML_ARTIFACT_ROOT", "value": artifact_root},
            {"name": "LOOPML_HOME", "value": CACHE_DIR},
        ],
        "livenessProbe": _probe(LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(READY_PATH, period=5, failures=2),
        # Loading model packages can take a while; liveness starts counting only once the process answers.
        "startupProbe": _probe(LIVE_PATH, period=2, failures=60),
        "resources": {
            "requests": {"cpu": sized.cpu_request, "memory": sized.memory_request},
            "limits": {"cpu": sized.cpu_limit, "memory": sized.memory_limit},
        },
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(scrape)},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "fsGroup": RUN_AS_USER},
                    "containers": [container],
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(scrape),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name},
            "minReplicas": replicas,
            "maxReplicas": top,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_utilization},
                    },
                }
            ],
        },
    }
    return [deployment, service, autoscaler]


def write_emit(
    kind: str,
    name: str,
    directory: str | os.PathLike[str],
    *,
    image: str = DEFAULT_IMAGE,
    replicas: int = 2,
    port: int = SERVING_PORT,
    database_secret: str = "loopml-database",  # noqa: S107 - the name of a Kubernetes Secret, not a secret
    artifact_root: str = "s3://loopml-artifacts",
) -> list[Path]:
    """Write `Dockerfile` (kind `docker`) or `deployment.yaml`, `service.yaml` and
    `horizontalpodautoscaler.yaml` (kind `k8s`) into `directory`; returns the paths written. Each file is
    replaced atomically."""
    target = Path(directory)
    if kind == "docker":
        files = {"Dockerfile": render_dockerfile(name, port=port)}
    elif kind == "k8s":
        objects = render_kubernetes(name, image, replicas, port, database_secret, artifact_root)
        files = {f"{obj['kind'].lower()}.yaml": yaml.safe_dump(obj, sort_keys=False) for obj in objects}
    else:
        raise InvalidInput(f"emit kind must be one of {', '.join(EMIT_KINDS)}, got {kind!r}")
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"{target} exists and is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    return [_write_atomic(target / filename, text) for filename, text in files.items()]


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port must be in 1..65535, got {port}")


def _write_atomic(path: Path, text: str) -> Path:
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path
