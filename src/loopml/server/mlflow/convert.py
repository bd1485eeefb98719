"""loopml's domain objects as MLflow's proto3-JSON entities, and MLflow's ids as loopml's.

An MLflow experiment is a loopml experiment (its id as a decimal string), a run a loopml run (the same
32-hex id), times the same milliseconds. Artifacts are served by this server's artifact proxy, so every
location is an `mlflow-artifacts:` URI the client resolves against the tracking URI.
"""

from __future__ import annotations

import json
import math
from typing import Any

from loopml.domain import Dataset, Experiment, Metric, Run
from loopml.errors import ExperimentNotFound

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_EXPERIMENT_ID",
    "MODEL_INPUT_TAG",
    "MODEL_OUTPUT_TAG",
    "PARENT_TAG",
    "RUN_NAME_TAG",
    "USER_TAG",
    "dataset_to_json",
    "experiment_artifact_location",
    "experiment_id",
    "experiment_to_json",
    "float_to_json",
    "lifecycle_stage",
    "metric_to_json",
    "run_artifact_uri",
    "run_info_to_json",
    "run_to_json",
    "visible_tags",
]

DEFAULT_EXPERIMENT_ID = "0"
"""The id MLflow clients use when no experiment was set; it names the caller's `Default` experiment."""
DEFAULT_EXPERIMENT = "Default"
USER_TAG = "mlflow.user"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
MODEL_INPUT_TAG = "loopml.mlflow.model_input."
MODEL_OUTPUT_TAG = "loopml.mlflow.model_output."
"""Run tags (`<prefix><model id>` = step) that keep the logged models a run used or produced."""
_MODEL_LINK_PREFIXES = (MODEL_INPUT_TAG, MODEL_OUTPUT_TAG)
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


def lifecycle_stage(deleted_at: int | None) -> str:
    return "active" if deleted_at is None else "deleted"


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": experiment_artifact_location(experiment.id),
        "lifecycle_stage": lifecycle_stage(experiment.deleted_at),
        "creation_time": experiment.created_at,
        "last_update_time": experiment.updated_at or experiment.created_at,
        "tags": _pairs(experiment.tags),
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
        "lifecycle_stage": lifecycle_stage(run.deleted_at),
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def visible_tags(run: Run) -> dict[str, str]:
    """The run's tags as MLflow shows them: its name and parent as MLflow's tags, loopml's bookkeeping of
    model inputs and outputs left out (they are answered as `inputs` and `outputs`)."""
    shown = {k: v for k, v in run.tags.items() if not k.startswith(_MODEL_LINK_PREFIXES)}
    shown[RUN_NAME_TAG] = run.name
    if run.parent_run_id is not None:
        shown[PARENT_TAG] = run.parent_run_id
    return shown


def _model_links(run: Run, prefix: str) -> list[dict[str, Any]]:
    links = []
    for key, value in run.tags.items():
        if key.startswith(prefix):
            link: dict[str, Any] = {"model_id": key[len(prefix) :]}
            if value:
                link["step"] = int(value)
            links.append(link)
    return links


def dataset_to_json(dataset: Dataset) -> dict[str, Any]:
    columns = [{"name": name, "type": dtype} for name, dtype in dataset.schema]
    context = {"training": "training", "validation": "validation", "test": "test", "reference": "reference"}
    entry: dict[str, Any] = {
        "dataset": {
            "name": dataset.name,
            "digest": dataset.digest,
            "source_type": "loopml",
            "source": dataset.source,
            "schema": json.dumps({"mlflow_colspec": columns}),
            "profile": json.dumps({"num_rows": dataset.rows}),
        },
        "tags": [],
    }
    if dataset.role is not None:
        entry["tags"] = [{"key": "mlflow.data.context", "value": context.get(dataset.role, dataset.role)}]
    return entry


def run_to_json(run: Run, datasets: list[Dataset] | None = None) -> dict[str, Any]:
    points = run.metric_points
    metrics = [
        metric_to_json(points[key]) if key in points else {"key": key, "value": float_to_json(value), "step": 0}
        for key, value in run.metrics.items()
    ]
    inputs: dict[str, Any] = {}
    if datasets:
        inputs["dataset_inputs"] = [dataset_to_json(d) for d in datasets]
    model_inputs = _model_links(run, MODEL_INPUT_TAG)
    if model_inputs:
        inputs["model_inputs"] = model_inputs
    model_outputs = _model_links(run, MODEL_OUTPUT_TAG)
    return {
        "info": run_info_to_json(run),
        "data": {"metrics": metrics, "params": _pairs(run.params), "tags": _pairs(visible_tags(run))},
        "inputs": inputs,
        "outputs": {"model_outputs": model_outputs} if model_outputs else {},
    }
