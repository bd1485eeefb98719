"""loopml's registered models, versions and logged models as MLflow's proto3-JSON entities.

A version made from an MLflow 3 logged model (its package under `models/m-<id>`) answers with that model's
`model_id` and `source` `models:/m-<id>`; its files are served by the artifact proxy at
`mlflow-artifacts:/<experiment>/models/<id>/artifacts` (the MLflow files the client uploaded). Any other
version's source is the run artifact path of its loopml package.
"""

from __future__ import annotations

from typing import Any

from loopml.domain import LoggedModelRecord, LoggedModelStatus, ModelVersion, ModelVersionStatus, RegisteredModel
from loopml.registry import STAGE_TAG

__all__ = [
    "logged_model_artifact_uri",
    "logged_model_id",
    "logged_model_to_json",
    "model_to_json",
    "version_to_json",
]

_LOGGED_STATUS = {
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_STATUS_FROM_MLFLOW = {value: key for key, value in _LOGGED_STATUS.items()} | {
    "1": LoggedModelStatus.PENDING,
    "2": LoggedModelStatus.READY,
    "3": LoggedModelStatus.FAILED,
}


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def logged_model_id(version: ModelVersion) -> str | None:
    """The MLflow 3 logged model a version was registered from, if any."""
    prefix = version.artifact_path.removeprefix("models/")
    return prefix if version.artifact_path.startswith("models/m-") and "/" not in prefix else None


def logged_model_artifact_uri(experiment_id: int, model_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"


def version_to_json(version: ModelVersion) -> dict[str, Any]:
    model_id = logged_model_id(version)
    tags = {k: v for k, v in version.tags.items() if k != STAGE_TAG}
    body: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.created_at,
        "user_id": version.created_by,
        "current_stage": version.tags.get(STAGE_TAG, "None"),
        "description": version.description,
        "source": f"models:/{model_id}" if model_id else f"runs:/{version.run_id}/{version.artifact_path}",
        "run_id": version.run_id,
        "status": "READY",
        "tags": _pairs(tags),
        "run_link": "",
        "aliases": list(version.aliases),
    }
    if model_id:
        body["model_id"] = model_id
    if version.status is ModelVersionStatus.ARCHIVED and "mlflow.stage" not in version.tags:
        body["current_stage"] = "Archived"
    return body


def model_to_json(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "user_id": model.owner,
        "description": model.description,
        "tags": _pairs(model.tags),
        "aliases": [{"alias": alias, "version": str(number)} for alias, number in model.aliases.items()],
    }


def logged_model_to_json(model: LoggedModelRecord) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": logged_model_artifact_uri(model.experiment_id, model.id),
        "status": _LOGGED_STATUS[model.status],
        "model_type": model.model_type,
        "source_run_id": model.run_id,
        "status_message": model.status_message,
        "tags": _pairs(model.tags),
    }
    return {"info": info, "data": {"params": _pairs(model.params), "metrics": []}}
