"""Evaluation and gate operations: evaluations of versions, gate results, aliases that require a passed gate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from loopml.api.codecs import listed, one, raw
from loopml.api.fields import Integer, Name, Number
from loopml.api.operation import Operation, Request
from loopml.api.registry import AliasName, ModelName, VersionNumber
from loopml.domain.evaluation import (
    Evaluation,
    GateResult,
    evaluation_from_json,
    evaluation_to_json,
    gate_result_from_json,
    gate_result_to_json,
)

MODEL = "model's project"
MetricValue = Number | Literal["NaN", "Infinity", "-Infinity"]
Metrics = Annotated[dict[Annotated[str, Field(max_length=64)], MetricValue], Field(max_length=200)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class RecordEvaluation(Request):
    """An evaluation computed where the data is (`lm.evaluate`, `loopml evaluate`)."""

    name: ModelName
    version: VersionNumber
    task: Literal["regression", "binary", "multiclass"]
    label: Name
    dataset_digest: Annotated[str, Field(min_length=64, max_length=64)]
    dataset_source: Annotated[str, Field(max_length=4000)]
    rows: Annotated[Integer, Field(ge=1)]
    metrics: Metrics
    slices: (
        Annotated[
            dict[Annotated[str, Field(max_length=250)], dict[Annotated[str, Field(max_length=200)], Metrics]],
            Field(max_length=20),
        ]
        | None
    ) = None
    baseline_version: Annotated[Integer, Field(ge=1)] | None = None
    comparison: Annotated[list[dict[str, Any]], Field(max_length=200)] | None = None
    """Per metric: {metric, value, baseline, difference, low, high} (the service checks the shape)."""


class ListEvaluations(Request):
    name: ModelName
    version: VersionNumber | None = None
    max_results: Annotated[int, Field(ge=1, le=1000)] = 100


class EvaluationPath(Request):
    evaluation_id: Id


class CheckGate(Request):
    """Judge a version against a policy: metric checks on a stored evaluation, the rest on `measurements`."""

    name: ModelName
    version: VersionNumber
    policy: Annotated[str, Field(min_length=1, max_length=65536)]
    evaluation_id: Id | None = None
    measurements: dict[str, Any] | None = None


class ListGateResults(Request):
    name: ModelName
    version: VersionNumber | None = None
    max_results: Annotated[int, Field(ge=1, le=1000)] = 100


class GateResultPath(Request):
    result_id: Id


class RequireGate(Request):
    name: ModelName
    alias: AliasName
    required: bool = True


class ModelOnly(Request):
    name: ModelName


_evaluation = one("evaluation", evaluation_to_json, evaluation_from_json)
_evaluations = listed("evaluations", evaluation_to_json, evaluation_from_json)
_result = one("gate_result", gate_result_to_json, gate_result_from_json)
_results = listed("gate_results", gate_result_to_json, gate_result_from_json)

RECORD_EVALUATION: Operation[Evaluation] = Operation(
    "record_evaluation", "evaluations", "record_evaluation", "editor", "path", MODEL,
    "POST", "/models/{name}/versions/{version}/evaluations", RecordEvaluation, _evaluation, "evaluations",
)  # fmt: skip
LIST_EVALUATIONS: Operation[list[Evaluation]] = Operation(
    "list_evaluations", "evaluations", "list_evaluations", "viewer", "path", MODEL,
    "GET", "/models/{name}/evaluations", ListEvaluations, _evaluations, "evaluations",
)  # fmt: skip
GET_EVALUATION: Operation[Evaluation] = Operation(
    "get_evaluation", "evaluations", "get_evaluation", "viewer", "path", "the evaluated model's project",
    "GET", "/evaluations/{evaluation_id}", EvaluationPath, _evaluation, "evaluations",
)  # fmt: skip
CHECK_GATE: Operation[GateResult] = Operation(
    "check_gate", "gates", "check_gate", "editor", "path", MODEL,
    "POST", "/models/{name}/versions/{version}/gate-results", CheckGate, _result, "gates",
)  # fmt: skip
LIST_GATE_RESULTS: Operation[list[GateResult]] = Operation(
    "list_gate_results", "gates", "list_gate_results", "viewer", "path", MODEL,
    "GET", "/models/{name}/gate-results", ListGateResults, _results, "gates",
)  # fmt: skip
GET_GATE_RESULT: Operation[GateResult] = Operation(
    "get_gate_result", "gates", "get_gate_result", "viewer", "path", "the judged model's project",
    "GET", "/gate-results/{result_id}", GateResultPath, _result, "gates",
)  # fmt: skip
REQUIRE_GATE: Operation[list[str]] = Operation(
    "require_gate", "gates", "require_gate", "editor", "path", MODEL,
    "PUT", "/models/{name}/gate-requirements/{alias}", RequireGate, raw("aliases"), "gates",
    summary="Make an alias require a passed gate (editor), or drop the requirement with required=false (admin).",
)  # fmt: skip
GATE_REQUIREMENTS: Operation[list[str]] = Operation(
    "gate_requirements", "gates", "gate_requirements", "viewer", "path", MODEL,
    "GET", "/models/{name}/gate-requirements", ModelOnly, raw("aliases"), "gates",
)  # fmt: skip

OPERATIONS = (
    RECORD_EVALUATION,
    LIST_EVALUATIONS,
    GET_EVALUATION,
    CHECK_GATE,
    LIST_GATE_RESULTS,
    GET_GATE_RESULT,
    REQUIRE_GATE,
    GATE_REQUIREMENTS,
)
