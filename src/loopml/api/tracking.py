"""Tracking operations: experiments, runs, params, tags, metrics, datasets, run artifacts, search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from loopml.api.codecs import counted, listed, one, paged, series_codec
from loopml.api.fields import INT32, INT64, ExperimentId, Integer, Key, Millis, Name, Number, Text
from loopml.api.operation import TEXT_VALUES, Codec, Operation, Request
from loopml.domain import (
    ArtifactRecord,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    MetricSeries,
    Page,
    Run,
    wire,
)
from loopml.domain.search import MAX_RESULTS

Values = Annotated[dict[Key, Text], Field(max_length=10_000), TEXT_VALUES]
"""Params or tags: text values (numbers and booleans are sent as their text)."""
OrderBy = Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=20)]
PageToken = Annotated[str, Field(max_length=200)]
RunId = str
MAX_POINTS = 100_000

EXPERIMENT = "experiment's project"
RUN = "run -> experiment's project"

ViewType = Literal["active_only", "deleted_only", "all"]
"""Which of the live and deleted runs (or experiments) a listing shows, as MLflow's `ViewType`."""
_DELETED: dict[str, bool | None] = {"active_only": False, "deleted_only": True, "all": None}


def view_type_of(deleted: bool | None) -> ViewType:
    """The `view_type` of a service's `deleted` argument (False: live only, True: deleted only, None: all)."""
    return "all" if deleted is None else "deleted_only" if deleted else "active_only"


class _Viewed(Request):
    """A listing with `view_type` on the wire and the service's `deleted` argument in Python."""

    view_type: ViewType = "active_only"

    def arguments(self) -> dict[str, Any]:
        arguments = super().arguments()
        view = arguments.pop("view_type")
        arguments["deleted"] = _DELETED[view] if isinstance(view, str) else False
        return arguments

    @classmethod
    def to_wire(cls, arguments: Mapping[str, Any]) -> dict[str, Any]:
        wire = super().to_wire({k: v for k, v in arguments.items() if k != "deleted"})
        if "deleted" in arguments:
            wire["view_type"] = view_type_of(arguments["deleted"])
        return wire


# -- experiments -------------------------------------------------------------------------------------


class ListExperiments(_Viewed):
    project: Annotated[str, Field(max_length=250)] | None = None
    name: Annotated[str, Field(max_length=250)] | None = None
    """Only the experiment of this name (an empty list if there is none)."""


class CreateExperiment(Request):
    name: Name
    project: Name | None = None


class GetExperiment(Request):
    experiment_id: Annotated[int, Field(ge=0, le=INT32)]


class ExperimentAction(GetExperiment):
    """A POST on an experiment that takes no body (or `{}`)."""

    body_required: ClassVar[bool] = False


class RenameExperiment(Request):
    experiment_id: Annotated[int, Field(ge=0, le=INT32)]
    name: Name


class ExperimentTags(Request):
    experiment_id: Annotated[int, Field(ge=0, le=INT32)]
    tags: Values


class ExperimentTag(Request):
    experiment_id: Annotated[int, Field(ge=0, le=INT32)]
    key: Key


_experiment = one("experiment", wire.experiment_to_json, wire.experiment_from_json)

LIST_EXPERIMENTS: Operation[list[Experiment]] = Operation(
    "list_experiments", "tracking", "list_experiments", "viewer", "listing", EXPERIMENT,
    "GET", "/experiments", ListExperiments,
    listed("experiments", wire.experiment_to_json, wire.experiment_from_json), "experiments",
)  # fmt: skip
GET_OR_CREATE_EXPERIMENT: Operation[Experiment] = Operation(
    "get_or_create_experiment", "tracking", "get_or_create_experiment", "editor", "body", "body.project",
    "POST", "/experiments", CreateExperiment, _experiment, "experiments",
)  # fmt: skip
GET_EXPERIMENT: Operation[Experiment] = Operation(
    "get_experiment", "tracking", "get_experiment", "viewer", "path", EXPERIMENT,
    "GET", "/experiments/{experiment_id}", GetExperiment, _experiment, "experiments",
)  # fmt: skip
RENAME_EXPERIMENT: Operation[Experiment] = Operation(
    "rename_experiment", "tracking", "rename_experiment", "editor", "path", EXPERIMENT,
    "PATCH", "/experiments/{experiment_id}", RenameExperiment, _experiment, "experiments",
    summary="Rename an experiment (the name must be free in its project)",
)  # fmt: skip
DELETE_EXPERIMENT: Operation[Experiment] = Operation(
    "delete_experiment", "tracking", "delete_experiment", "editor", "path", EXPERIMENT,
    "DELETE", "/experiments/{experiment_id}", GetExperiment, _experiment, "experiments",
    summary="Delete an experiment and its live runs (soft: restore brings both back)",
)  # fmt: skip
RESTORE_EXPERIMENT: Operation[Experiment] = Operation(
    "restore_experiment", "tracking", "restore_experiment", "editor", "path", EXPERIMENT,
    "POST", "/experiments/{experiment_id}/restore", ExperimentAction, _experiment, "experiments",
    summary="Restore a deleted experiment and the runs deleted with it",
)  # fmt: skip
SET_EXPERIMENT_TAGS: Operation[Experiment] = Operation(
    "set_experiment_tags", "tracking", "set_experiment_tags", "editor", "path", EXPERIMENT,
    "POST", "/experiments/{experiment_id}/tags", ExperimentTags, _experiment, "experiments",
)  # fmt: skip
DELETE_EXPERIMENT_TAG: Operation[Experiment] = Operation(
    "delete_experiment_tag", "tracking", "delete_experiment_tag", "editor", "path", EXPERIMENT,
    "DELETE", "/experiments/{experiment_id}/tags/{key:path}", ExperimentTag, _experiment, "experiments",
)  # fmt: skip


# -- runs -----------------------------------------------------------------------------------------------


class SearchRuns(_Viewed):
    experiment_ids: Annotated[list[ExperimentId], Field(min_length=1, max_length=1000)]
    filter: Text | None = None
    order_by: OrderBy | None = None
    max_results: Annotated[Integer, Field(ge=1, le=MAX_RESULTS)] = 1000
    page_token: PageToken | None = None


class CreateRun(Request):
    experiment_id: ExperimentId
    name: Name | None = None
    parent_run_id: Annotated[str, Field(max_length=64)] | None = None
    params: Values | None = None
    tags: Values | None = None
    start_time: Millis | None = None


class RunPath(Request):
    run_id: RunId


class RunAction(RunPath):
    """A POST on a run that takes no body (or `{}`)."""

    body_required: ClassVar[bool] = False


class EndRun(Request):
    run_id: RunId
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
    end_time: Millis | None = None


class LogParams(Request):
    run_id: RunId
    params: Values


class SetTags(Request):
    run_id: RunId
    tags: Values


class RunTag(Request):
    run_id: RunId
    key: Key


_run = one("run", wire.run_to_json, wire.run_from_json)

SEARCH_RUNS: Operation[Page[Run]] = Operation(
    "search_runs", "tracking", "search_runs", "viewer", "path", "body.experiment_ids -> experiment's project",
    "POST", "/runs/search", SearchRuns, paged("runs", wire.run_to_json, wire.run_from_json), "runs",
)  # fmt: skip
CREATE_RUN: Operation[Run] = Operation(
    "create_run", "tracking", "create_run", "editor", "path", "body.experiment_id -> experiment's project",
    "POST", "/runs", CreateRun, _run, "runs",
)  # fmt: skip
GET_RUN: Operation[Run] = Operation(
    "get_run", "tracking", "get_run", "viewer", "path", RUN, "GET", "/runs/{run_id}", RunPath, _run, "runs"
)
END_RUN: Operation[Run] = Operation(
    "end_run", "tracking", "end_run", "editor", "path", RUN, "PATCH", "/runs/{run_id}", EndRun, _run, "runs"
)
LOG_PARAMS: Operation[None] = Operation(
    "log_params", "tracking", "log_params", "editor", "path", RUN,
    "POST", "/runs/{run_id}/params", LogParams, counted("logged", "params"), "runs",
)  # fmt: skip
SET_TAGS: Operation[None] = Operation(
    "set_tags", "tracking", "set_tags", "editor", "path", RUN,
    "POST", "/runs/{run_id}/tags", SetTags, counted("logged", "tags"), "runs",
)  # fmt: skip
DELETE_RUN_TAG: Operation[Run] = Operation(
    "delete_run_tag", "tracking", "delete_tag", "editor", "path", RUN,
    "DELETE", "/runs/{run_id}/tags/{key:path}", RunTag, _run, "runs",
)  # fmt: skip
DELETE_RUN: Operation[Run] = Operation(
    "delete_run", "tracking", "delete_run", "editor", "path", RUN, "DELETE", "/runs/{run_id}", RunPath, _run, "runs",
    summary="Delete a run (soft, as MLflow's lifecycle_stage: searches leave it out until it is restored)",
)  # fmt: skip
RESTORE_RUN: Operation[Run] = Operation(
    "restore_run", "tracking", "restore_run", "editor", "path", RUN,
    "POST", "/runs/{run_id}/restore", RunAction, _run, "runs", summary="Restore a deleted run",
)  # fmt: skip


# -- metrics ------------------------------------------------------------------------------------------


class MetricBatch(Request):
    """The columnar body of `POST /runs/{run_id}/metrics`. Ingest parses it by hand for speed (the model is its
    documentation); the client sends it with `Backend.log_metrics`."""

    run_id: RunId
    keys: Annotated[list[Key], Field(max_length=MAX_POINTS)]
    values: Annotated[list[Number | Literal["NaN", "Infinity", "-Infinity"]], Field(max_length=MAX_POINTS)]
    steps: Annotated[list[Annotated[Integer, Field(ge=-INT64, le=INT64)]], Field(max_length=MAX_POINTS)]
    timestamps: Annotated[list[Annotated[Integer, Field(ge=0, le=INT64)]], Field(max_length=MAX_POINTS)]


class MetricHistory(Request):
    run_id: RunId
    key: str


LOG_METRICS: Operation[int] = Operation(
    "log_metrics", "tracking", "log_metrics", "editor", "path", RUN,
    "POST", "/runs/{run_id}/metrics", MetricBatch, Codec(lambda n, _: {"stored": n}, lambda b: int(b["stored"])),
    "metrics", summary="Store a batch of metric points (sent again under the same Idempotency-Key: stored once)",
    endpoint="custom", backend_method="log_metrics",
)  # fmt: skip
METRIC_HISTORY: Operation[list[Metric]] = Operation(
    "metric_history", "tracking", "metric_history", "viewer", "path", RUN,
    "GET", "/runs/{run_id}/metrics/{key:path}", MetricHistory,
    listed("metrics", wire.metric_to_json, wire.metric_from_json), "metrics",
)  # fmt: skip
METRIC_SERIES: Operation[MetricSeries] = Operation(
    "metric_series", "tracking", "metric_series", "viewer", "path", RUN,
    "GET", "/runs/{run_id}/metric-series/{key:path}", MetricHistory, series_codec, "metrics",
    summary="A metric's whole history as one binary columnar body (see docs/tracking.md: magic LMS1, "
    "little-endian int64 steps, int64 timestamps, float64 values)",
)  # fmt: skip


# -- datasets -----------------------------------------------------------------------------------------


class LogDataset(Request):
    """A dataset by fingerprint (digest, schema, rows); the service argument is one `DatasetInput`."""

    run_id: RunId
    name: Name
    digest: Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
    columns: Annotated[list[tuple[Name, Name]], Field(alias="schema", max_length=10_000)]
    rows: Annotated[Integer, Field(ge=0, le=INT64)]
    source: Annotated[Text, Field(max_length=4096)] = ""
    role: Literal["training", "validation", "test", "reference"] = "training"

    def arguments(self) -> dict[str, Any]:
        data = DatasetInput(self.name, self.digest, tuple(self.columns), self.rows, self.source, self.role)
        return {"run_id": self.run_id, "data": data}

    @classmethod
    def to_wire(cls, arguments: Mapping[str, Any]) -> dict[str, Any]:
        data: DatasetInput = arguments["data"]
        return {
            "run_id": arguments["run_id"],
            "name": data.name,
            "digest": data.digest,
            "schema": [list(column) for column in data.schema],
            "rows": data.rows,
            "source": data.source,
            "role": data.role,
        }


LOG_DATASET: Operation[Dataset] = Operation(
    "log_dataset", "tracking", "log_dataset", "editor", "path", RUN,
    "POST", "/runs/{run_id}/datasets", LogDataset, one("dataset", wire.dataset_to_json, wire.dataset_from_json),
    "datasets",
)  # fmt: skip
RUN_DATASETS: Operation[list[Dataset]] = Operation(
    "run_datasets", "tracking", "run_datasets", "viewer", "path", RUN,
    "GET", "/runs/{run_id}/datasets", RunPath, listed("datasets", wire.dataset_to_json, wire.dataset_from_json),
    "datasets",
)  # fmt: skip


# -- artifacts ----------------------------------------------------------------------------------------


class ArtifactPath(Request):
    run_id: RunId
    path: str


class ListArtifacts(Request):
    run_id: RunId
    prefix: Annotated[str, Field(max_length=3072)] | None = None


def _no_json(*_: Any) -> Any:
    raise TypeError("a streamed body: use the Backend method of this operation")


_artifact = one("artifact", wire.artifact_to_json, wire.artifact_from_json)

LOG_ARTIFACT: Operation[ArtifactRecord] = Operation(
    "log_artifact", "tracking", "log_artifact", "editor", "path", RUN,
    "PUT", "/runs/{run_id}/artifacts/{path:path}", ArtifactPath, _artifact, "artifacts",
    summary="Upload one artifact: the raw bytes as the body, streamed (X-Content-SHA256: the expected digest)",
    endpoint="custom", backend_method="log_artifact",
)  # fmt: skip
LIST_ARTIFACTS: Operation[list[ArtifactRecord]] = Operation(
    "list_artifacts", "tracking", "list_artifacts", "viewer", "path", RUN,
    "GET", "/runs/{run_id}/artifacts", ListArtifacts,
    listed("artifacts", wire.artifact_to_json, wire.artifact_from_json), "artifacts",
)  # fmt: skip
DOWNLOAD_ARTIFACT: Operation[bytes] = Operation(
    "download_artifact", "tracking", "open_artifact", "viewer", "path", RUN,
    "GET", "/runs/{run_id}/artifacts/{path:path}", ArtifactPath,
    Codec(_no_json, _no_json, media_type="application/octet-stream"), "artifacts",
    summary="Download one artifact, streamed, with its sha256 in X-Content-SHA256",
    endpoint="custom", backend_method="download_artifact",
)  # fmt: skip

OPERATIONS = (
    LIST_EXPERIMENTS,
    GET_OR_CREATE_EXPERIMENT,
    GET_EXPERIMENT,
    RENAME_EXPERIMENT,
    DELETE_EXPERIMENT,
    RESTORE_EXPERIMENT,
    SET_EXPERIMENT_TAGS,
    DELETE_EXPERIMENT_TAG,
    SEARCH_RUNS,
    CREATE_RUN,
    GET_RUN,
    END_RUN,
    LOG_PARAMS,
    SET_TAGS,
    DELETE_RUN_TAG,
    DELETE_RUN,
    RESTORE_RUN,
    LOG_METRICS,
    METRIC_HISTORY,
    METRIC_SERIES,
    LOG_DATASET,
    RUN_DATASETS,
    LOG_ARTIFACT,
    LIST_ARTIFACTS,
    DOWNLOAD_ARTIFACT,
)
