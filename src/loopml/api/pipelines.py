"""Pipeline operations: runs (list, show, submit by reference, retry), step runs and their logs, lineage, and
schedules (create, list, delete, firings, fire). Editors run, schedule and retry; viewers read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool

from loopml.api.codecs import listed, one, raw
from loopml.api.fields import Name, Text
from loopml.api.operation import Codec, Operation, Request
from loopml.domain import PipelineRunRecord, StepRun
from loopml.domain.pipelines import (
    Lineage,
    lineage_from_wire,
    lineage_to_wire,
    pipeline_run_from_json,
    pipeline_run_to_json,
    step_run_from_json,
    step_run_to_json,
)
from loopml.domain.schedules import Firing, Schedule, firing_from_json, schedule_from_json

RunId = Annotated[str, Field(min_length=1, max_length=64)]
Reference = Annotated[Text, Field(min_length=3, max_length=4096)]
Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
Params = dict[str, Any]


class ListPipelineRuns(Request):
    pipeline: Name | None = None
    project: Name | None = None
    status: Status | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50


class PipelineRunPath(Request):
    run_id: RunId


class StepPath(Request):
    run_id: RunId
    step: Name


class LineageQuery(Request):
    reference: Reference


class SubmitPipelineRun(Request):
    pipeline: Reference
    params: Params | None = None
    executor: Name = "process"
    cache: StrictBool = True
    project: Name | None = None


class RetryPipelineRun(Request):
    body_required = False
    run_id: RunId
    executor: Name | None = None


class CreateSchedule(Request):
    name: Name
    pipeline: Reference
    cron: Annotated[Text, Field(max_length=250)] | None = None
    dataset: Name | None = None
    params: Params | None = None
    executor: Name = "process"
    project: Name | None = None


class NoArguments(Request):
    pass


class SchedulePath(Request):
    name: Name


class ListFirings(Request):
    name: Name | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class FireSchedule(Request):
    name: Name
    key: Annotated[Text, Field(min_length=3, max_length=512)]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]
    context: Params | None = None


_run = one("pipeline_run", pipeline_run_to_json, pipeline_run_from_json)
_schedule = one("schedule", lambda s: s.to_json(), schedule_from_json)
_fired = Codec[Firing | None](
    lambda firing, _: {"firing": None if firing is None else firing.to_json()},
    lambda body: None if body["firing"] is None else firing_from_json(body["firing"]),
)

LIST_PIPELINE_RUNS: Operation[list[PipelineRunRecord]] = Operation(
    "list_pipeline_runs", "pipelines", "list_runs", "viewer", "listing", "run's experiment's project",
    "GET", "/pipelines/runs", ListPipelineRuns,
    listed("pipeline_runs", pipeline_run_to_json, pipeline_run_from_json), "pipelines",
    summary="Pipeline runs, newest first (without their steps)",
)  # fmt: skip
GET_PIPELINE_RUN: Operation[PipelineRunRecord] = Operation(
    "get_pipeline_run", "pipelines", "get_run", "viewer", "path", "run's experiment's project",
    "GET", "/pipelines/runs/{run_id}", PipelineRunPath, _run, "pipelines",
    summary="A pipeline run with every step run: state, attempts, cache decision, error and traceback",
)  # fmt: skip
SUBMIT_PIPELINE_RUN: Operation[PipelineRunRecord] = Operation(
    "submit_pipeline_run", "launcher", "submit", "editor", "body", "project field (or the token's)",
    "POST", "/pipelines/runs", SubmitPipelineRun, _run, "pipelines",
    summary="Run a pipeline by reference (path.py:function under the server's pipeline roots, or module:function "
    "of an allowed module) in a process of the server; answers the RUNNING run",
    errors=frozenset({503}),
)  # fmt: skip
RETRY_PIPELINE_RUN: Operation[PipelineRunRecord] = Operation(
    "retry_pipeline_run", "launcher", "retry", "editor", "path", "run's experiment's project",
    "POST", "/pipelines/runs/{run_id}/retry", RetryPipelineRun, _run, "pipelines",
    summary="Run a failed run again as a new run, reusing every finished step's outputs (once per run)",
    errors=frozenset({503}),
)  # fmt: skip
GET_STEP_RUN: Operation[StepRun] = Operation(
    "get_step_run", "pipelines", "step_run", "viewer", "path", "run's experiment's project",
    "GET", "/pipelines/runs/{run_id}/steps/{step}", StepPath,
    one("step_run", step_run_to_json, step_run_from_json), "pipelines",
    summary="One step run, by step name or step run id",
)  # fmt: skip
GET_STEP_LOG: Operation[str] = Operation(
    "get_step_log", "pipelines", "step_log", "viewer", "path", "run's experiment's project",
    "GET", "/pipelines/runs/{run_id}/steps/{step}/log", StepPath, raw("log"), "pipelines",
    summary="What the step's last attempt wrote to stdout and stderr",
)  # fmt: skip
GET_LINEAGE: Operation[Lineage] = Operation(
    "get_lineage", "pipelines", "lineage", "viewer", "path", "project of the subject's runs",
    "GET", "/lineage", LineageQuery, one("lineage", lineage_to_wire, lineage_from_wire), "pipelines",
    summary="Which data and code produced a model version (models:/name/7), a step run or an output digest",
)  # fmt: skip
CREATE_SCHEDULE: Operation[Schedule] = Operation(
    "create_schedule", "schedules", "create_schedule", "editor", "body", "project field (or the token's)",
    "POST", "/pipelines/schedules", CreateSchedule, _schedule, "pipelines",
    summary="Have the server run a pipeline on cron ticks (UTC) and/or new versions of a dataset",
)  # fmt: skip
LIST_SCHEDULES: Operation[list[Schedule]] = Operation(
    "list_schedules", "schedules", "schedules", "viewer", "listing", "schedule's project",
    "GET", "/pipelines/schedules", NoArguments, listed("schedules", lambda s: s.to_json(), schedule_from_json),
    "pipelines",
)  # fmt: skip
DELETE_SCHEDULE: Operation[Schedule] = Operation(
    "delete_schedule", "schedules", "delete_schedule", "editor", "path", "schedule's project",
    "DELETE", "/pipelines/schedules/{name}", SchedulePath, _schedule, "pipelines",
    summary="Stop firing a schedule (a run it started goes on)",
)  # fmt: skip
LIST_FIRINGS: Operation[list[Firing]] = Operation(
    "list_firings", "schedules", "firings", "viewer", "listing", "schedule's project",
    "GET", "/pipelines/firings", ListFirings, listed("firings", lambda f: f.to_json(), firing_from_json),
    "pipelines",
    summary="Each time a schedule fired, newest first",
)  # fmt: skip
FIRE_SCHEDULE: Operation[Firing | None] = Operation(
    "fire_schedule", "schedules", "fire", "editor", "path", "schedule's project",
    "POST", "/pipelines/schedules/{name}/fire", FireSchedule, _fired, "pipelines",
    summary="Start a schedule once for an event key (alert:42); null if that key fired before",
)  # fmt: skip

OPERATIONS = (
    LIST_PIPELINE_RUNS,
    GET_PIPELINE_RUN,
    SUBMIT_PIPELINE_RUN,
    RETRY_PIPELINE_RUN,
    GET_STEP_RUN,
    GET_STEP_LOG,
    GET_LINEAGE,
    CREATE_SCHEDULE,
    LIST_SCHEDULES,
    DELETE_SCHEDULE,
    LIST_FIRINGS,
    FIRE_SCHEDULE,
)
