"""MLflow's REST protocol on `loopml server`: `MLFLOW_TRACKING_URI=http://<loopml>` is the whole migration.

An adapter of the interface layer: one module per resource group, each route reading MLflow's request
message (`protocol.py`), calling the same services as `/api/v1` with the request's principal, and answering
MLflow's JSON. It owns no storage path of its own. `ROUTERS` lists each router with the prefixes it is
served under (MLflow's UI uses the `/ajax-api` twins).
"""

from __future__ import annotations

from fastapi import APIRouter

from loopml.server.mlflow import artifacts, experiments, logged_models, metrics, registry, runs, server_info
from loopml.server.mlflow.artifacts import upload_artifact
from loopml.server.mlflow.protocol import admission_error, render_exception

__all__ = ["PATH_PREFIXES", "ROUTERS", "admission_error", "is_mlflow_path", "render_exception", "upload_artifact"]

_API = "/api/2.0/mlflow"
_AJAX = "/ajax-api/2.0/mlflow"
_TRACKING = (experiments.router, runs.router, metrics.router, artifacts.tracking_router)
_REGISTRY = (registry.router, logged_models.router)

ROUTERS: tuple[tuple[str, APIRouter], ...] = (
    *((_API, router) for router in _TRACKING),
    *((_AJAX, router) for router in _TRACKING),
    *((_API, router) for router in _REGISTRY),
    *((_AJAX, router) for router in _REGISTRY),
    ("/api/2.0/mlflow-artifacts", artifacts.router),
    ("/ajax-api/2.0/mlflow-artifacts", artifacts.router),
    ("/api/3.0/mlflow", server_info.router),
    ("/ajax-api/3.0/mlflow", server_info.router),
)

PATH_PREFIXES = (
    _API + "/",
    _AJAX + "/",
    "/api/2.0/mlflow-artifacts/",
    "/ajax-api/2.0/mlflow-artifacts/",
    "/api/3.0/mlflow/",
    "/ajax-api/3.0/mlflow/",
)
"""Requests under these prefixes are MLflow's: even an unknown route is answered in MLflow's error shape."""


def is_mlflow_path(path: str) -> bool:
    return path.startswith(PATH_PREFIXES) or f"{path}/" in PATH_PREFIXES
