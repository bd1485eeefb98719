"""MLflow's run endpoints over `TrackingService`: create, get, update, delete, restore, search, and logging."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.domain import DatasetInput, MetricColumns, Principal, Run
from loopml.errors import InvalidInput
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.mlflow.convert import (
    MODEL_INPUT_TAG,
    MODEL_OUTPUT_TAG,
    PARENT_TAG,
    RUN_NAME_TAG,
    USER_TAG,
    run_info_to_json,
    run_to_json,
)
from loopml.server.mlflow.protocol import Message, MlflowResponse, MlflowRoute, read_message
from loopml.server.mlflow.resolve import resolve_experiment_id
from loopml.server.mlflow.search import MAX_RESULTS, run_filter, run_order, view_type
from loopml.tracking import TrackingService

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)

MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTRIES = 1000
MAX_DATASETS = 1000
_CONTEXTS = {"train": "training", "training": "training", "eval": "validation", "validation": "validation"}


def _run_id(message: Message) -> str:
    """MLflow sends the run as `run_id`, older clients as `run_uuid`."""
    run_id = message.string("run_id") or message.string("run_uuid")
    if not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    return run_id


def _pairs(messages: list[Message], what: str, limit: int) -> dict[str, str]:
    if len(messages) > limit:
        raise InvalidInput(
            f"A batch logging request can contain at most {limit} {what}. Got {len(messages)} {what}. "
            "Please split up the request across multiple requests and try again."
        )
    values: dict[str, str] = {}
    for item in messages:
        key = item.required_string("key")
        value = item.string("value", default="") or ""
        if what == "params" and key in values and values[key] != value:
            raise InvalidInput(f"Duplicate parameter keys have been submitted: {key!r} with different values")
        values[key] = value
    return values


def _metric_columns(messages: list[Message], default_time: int) -> MetricColumns:
    keys, values, steps, stamps = [], [], [], []
    for item in messages:
        keys.append(item.required_string("key"))
        value = item.double("value", required=True)
        assert value is not None
        values.append(value)
        steps.append(item.int64("step", default=0) or 0)
        stamp = item.int64("timestamp", default=default_time)
        stamps.append(default_time if stamp is None else stamp)
    return MetricColumns(keys, values, steps, stamps)


def _now() -> int:
    return int(time.time() * 1000)


def _create(tracking: TrackingService, principal: Principal, message: Message) -> Run:
    experiment = resolve_experiment_id(tracking, principal, message.string("experiment_id") or "0")
    tags = _pairs(message.messages("tags"), "tags", MAX_BATCH_ENTRIES)
    name = message.string("run_name") or tags.pop(RUN_NAME_TAG, None) or None
    tags.pop(RUN_NAME_TAG, None)
    parent = tags.pop(PARENT_TAG, None) or None
    user = message.string("user_id")
    if user and USER_TAG not in tags:
        tags[USER_TAG] = user
    return tracking.create_run(
        principal,
        experiment,
        name=name,
        parent_run_id=parent,
        tags=tags,
        start_time=message.int64("start_time"),
    )


@router.post("/runs/create")
async def create_run(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    run = await run_in_threadpool(_create, tracking, principal, message)
    return {"run": run_to_json(run)}


def _get(tracking: TrackingService, principal: Principal, run_id: str) -> dict[str, Any]:
    run = tracking.get_run(principal, run_id)
    return {"run": run_to_json(run, tracking.run_datasets(principal, run_id))}


@router.get("/runs/get")
async def get_run(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    return await run_in_threadpool(_get, tracking, principal, _run_id(message))


@router.post("/runs/update")
async def update_run(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    run = await run_in_threadpool(
        tracking.update_run,
        principal,
        _run_id(message),
        status=message.string("status"),
        end_time=message.int64("end_time"),
        name=message.string("run_name") or None,
    )
    return {"run_info": run_info_to_json(run)}


@router.post("/runs/delete")
async def delete_run(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(tracking.delete_run, principal, _run_id(message))
    return {}


@router.post("/runs/restore")
async def restore_run(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(tracking.restore_run, principal, _run_id(message))
    return {}


def _search(tracking: TrackingService, principal: Principal, message: Message) -> dict[str, Any]:
    max_results = message.int64("max_results", default=1000)
    if max_results is None or not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"Invalid value {max_results} for parameter 'max_results' supplied: 1 to {MAX_RESULTS}")
    experiments = [resolve_experiment_id(tracking, principal, e) for e in message.strings("experiment_ids")]
    if not experiments:
        return {}
    page = tracking.search_runs(
        principal,
        experiments,
        run_filter(message.string("filter")),
        run_order(message.strings("order_by")),
        max_results,
        message.string("page_token") or None,
        view_type(message.string("run_view_type")),
    )
    answer: dict[str, Any] = {"runs": [run_to_json(run) for run in page.items]}
    if page.next_page_token:
        answer["next_page_token"] = page.next_page_token
    return answer


@router.post("/runs/search")
async def search_runs(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    return await run_in_threadpool(_search, tracking, principal, message)


@router.post("/runs/log-metric")
async def log_metric(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    message.required_string("key")
    if not message.has("timestamp"):
        raise InvalidInput("Missing value for required parameter 'timestamp'.")
    columns = _metric_columns([message], _now())
    await run_in_threadpool(tracking.log_metrics, principal, _run_id(message), columns)
    return {}


@router.post("/runs/log-parameter")
async def log_param(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    params = {message.required_string("key"): message.string("value", default="") or ""}
    await run_in_threadpool(tracking.log_params, principal, _run_id(message), params)
    return {}


def _set_tag(tracking: TrackingService, principal: Principal, run_id: str, key: str, value: str) -> None:
    if key == RUN_NAME_TAG:  # MLflow renames a run through this tag
        tracking.update_run(principal, run_id, name=value)
    else:
        tracking.set_tags(principal, run_id, {key: value})


@router.post("/runs/set-tag")
async def set_tag(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    key, value = message.required_string("key"), message.string("value", default="") or ""
    await run_in_threadpool(_set_tag, tracking, principal, _run_id(message), key, value)
    return {}


@router.post("/runs/delete-tag")
async def delete_tag(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(tracking.delete_tag, principal, _run_id(message), message.required_string("key"))
    return {}


def _log_batch(tracking: TrackingService, principal: Principal, message: Message) -> None:
    run_id = _run_id(message)
    metrics = message.messages("metrics")
    params = message.messages("params")
    tags = message.messages("tags")
    if len(metrics) > MAX_BATCH_METRICS:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_BATCH_METRICS} metrics. Got {len(metrics)} "
            "metrics. Please split up metrics across multiple requests and try again."
        )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_BATCH_ENTRIES:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_BATCH_ENTRIES} metrics, params and tags in total. "
            f"Got {total}. Please split up the request across multiple requests and try again."
        )
    columns = _metric_columns(metrics, _now())
    param_values = _pairs(params, "params", MAX_BATCH_PARAMS)
    tag_values = _pairs(tags, "tags", MAX_BATCH_TAGS)
    name = tag_values.pop(RUN_NAME_TAG, None)
    tracking.log_batch(principal, run_id, columns, param_values, tag_values)
    if name:
        tracking.update_run(principal, run_id, name=name)


@router.post("/runs/log-batch")
async def log_batch(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_log_batch, tracking, principal, message)
    return {}


def _dataset(entry: Message) -> DatasetInput:
    dataset = entry.message("dataset")
    if dataset is None:
        raise InvalidInput("Missing value for required parameter 'datasets.dataset'.")
    name = dataset.required_string("name")
    source = dataset.string("source", default="") or ""
    schema_text = dataset.string("schema") or ""
    profile_text = dataset.string("profile") or ""
    columns: list[tuple[str, str]] = []
    rows = 0
    try:
        schema = json.loads(schema_text) if schema_text else {}
        profile = json.loads(profile_text) if profile_text else {}
    except ValueError:
        raise InvalidInput(f"dataset {name!r}: schema and profile must be JSON text") from None
    if isinstance(schema, dict):
        for column in schema.get("mlflow_colspec") or []:
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                columns.append((column["name"], str(column.get("type", "unknown"))))
    if isinstance(profile, dict) and isinstance(profile.get("num_rows"), int):
        rows = max(0, profile["num_rows"])
    tags = {t.required_string("key"): t.string("value", default="") or "" for t in entry.messages("tags")}
    context = tags.get("mlflow.data.context", "training").lower()
    role = _CONTEXTS.get(context, context if context in ("test", "reference") else "training")
    # MLflow's digest is a short hash of MLflow's own choosing; loopml identifies a dataset version by a
    # sha256, here of everything MLflow sent about it, so the same dataset logged twice is one version.
    identity = json.dumps(
        [name, dataset.string("digest") or "", dataset.string("source_type") or "", source, schema_text, profile_text]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return DatasetInput(name, digest, tuple(columns), rows, source, role)


def _log_inputs(tracking: TrackingService, principal: Principal, message: Message) -> None:
    run_id = _run_id(message)
    entries = message.messages("datasets")
    if len(entries) > MAX_DATASETS:
        raise InvalidInput(f"a log-inputs request can carry at most {MAX_DATASETS} datasets, got {len(entries)}")
    datasets = [_dataset(entry) for entry in entries]
    models = {f"{MODEL_INPUT_TAG}{m.required_string('model_id')}": "" for m in message.messages("models")}
    for dataset in datasets:
        tracking.log_dataset(principal, run_id, dataset)
    if models:
        tracking.set_tags(principal, run_id, models)
    if not datasets and not models:
        tracking.get_run(principal, run_id)  # a missing run is still an error


@router.post("/runs/log-inputs")
async def log_inputs(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_log_inputs, tracking, principal, message)
    return {}


def _log_outputs(tracking: TrackingService, principal: Principal, message: Message) -> None:
    run_id = _run_id(message)
    outputs = {}
    for model in message.messages("models"):
        step = model.int64("step", default=0)
        outputs[f"{MODEL_OUTPUT_TAG}{model.required_string('model_id')}"] = str(step or 0)
    if outputs:
        tracking.set_tags(principal, run_id, outputs)
    else:
        tracking.get_run(principal, run_id)


@router.post("/runs/outputs")
async def log_outputs(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_log_outputs, tracking, principal, message)
    return {}
