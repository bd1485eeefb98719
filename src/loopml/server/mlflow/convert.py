"""loopml's domain objects as MLflow's proto3-JSON entities, and MLflow's ids as loopml's.

An MLflow experiment is a loopml experiment (its id as a decimal string), a run a loopml run (the same
32-hex id), times the same milliseconds. Artifacts are served by this server's artifact proxy, so every
location is an `mlflow-artifacts:` URI the client resolves against the tracking URI.
"""

from __future__ import annotations

import math
from typing import Any

from loopml.domain import Experiment, Metric, Run
from loopml.errors import ExperimentNotFound

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_EXPERIMENT_ID",
    "experiment_artifact_location",
    "experiment_id",
    "experiment_to_json",
    "float_to_json",
    "metric_to_json",
    "run_artifact_uri",
    "run_info_to_json",
    "run_to_json",
]

DEFAULT_EXPERIMENT_ID = "0"
"""The id MLflow clients use when no experiment was set; it names the caller's `Default` experiment."""
DEFAULT_EXPERIMENT = "Default"
USER_TAG = "mlflow.user"
MAX_EXPERIMENT_ID = 2**31 - 1


def experiment_id(text: str) -> int:
    """loopml's experiment id of an MLflow experiment id (a decimal string); not found if it cannot be one."""
    digits = text.strip()
    if not digits.isdigit() or len(digits) > 10 or not 1 <= int(digits) <= MAX_EXPERIMENT_ID:
        raise ExperimentNotFound(f"Could not find experiment with ID {text!r}")
    return int(digits)


def experiment_artifact_location(experiment: int) -> str:
    return f"mlflow-artifacts:/{experiment}"


def run_artifact_uri(experiment: int, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment}/{run_id}/artifacts"


def float_to_json(value: float) -> float | str:
    """A double as proto3-JSON writes it: non-finite values are the strings NaN, Infinity, -Infinity."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": experiment_artifact_location(experiment.id),
        "lifecycle_stage": "active",
        "creation_time": experiment.created_at,
        "last_update_time": experiment.created_at,
        "tags": [],
    }


def metric_to_json(metric: Metric) -> dict[str, Any]:
    return {"key": metric.key, "value": float_to_json(metric.value), "timestamp": metric.timestamp, "step": metric.step}


def run_info_to_json(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.tags.get(USER_TAG, ""),
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": run_artifact_uri(run.experiment_id, run.id),
        "lifecycle_stage": "active",
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_to_json(run: Run) -> dict[str, Any]:
    metrics = [
        {"key": key, "value": float_to_json(value), "timestamp": 0, "step": 0} for key, value in run.metrics.items()
    ]
    return {
        "info": run_info_to_json(run),
        "data": {"metrics": metrics, "params": _pairs(run.params), "tags": _pairs(run.tags)},
        "inputs": {},
    }
