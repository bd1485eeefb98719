"""MLflow 3's logged-model endpoints over `LoggedModelService` (what `mlflow.<flavor>.log_model` calls)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.domain import Principal
from loopml.errors import InvalidInput, InvalidRequest, LoggedModelNotFound
from loopml.registry import LoggedModelService
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import LoggedModels, Tracking
from loopml.server.mlflow.artifacts import RESOLVERS, RunFiles
from loopml.server.mlflow.protocol import Message, MlflowResponse, MlflowRoute, read_message
from loopml.server.mlflow.registry_json import LOGGED_STATUS_FROM_MLFLOW, logged_model_to_json
from loopml.server.mlflow.resolve import resolve_experiment_id
from loopml.tracking import TrackingService

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)


def _logged_model_files(tracking: TrackingService, principal: Principal, segments: list[str]) -> RunFiles | None:
    """Artifact proxy paths `<experiment>/models/<model id>/artifacts/<name>`: the files of a logged model are
    its run's artifacts under `mlflow-models/<model id>/`."""
    if len(segments) < 4 or segments[1] != "models" or segments[3] != "artifacts":
        return None
    record = LoggedModelService(tracking.store, tracking.artifacts).locate(principal, segments[2])
    if str(record.experiment_id) != segments[0]:
        raise LoggedModelNotFound(f"logged model {segments[2]} is not in experiment {segments[0]}")
    return RunFiles(record.run_id, "/".join([record.mlflow_prefix, *segments[4:]]))


RESOLVERS.append(_logged_model_files)


def _pairs(message: Message, name: str) -> dict[str, str]:
    return {item.required_string("key"): item.string("value") or "" for item in message.messages(name)}


_CLAUSE = re.compile(r"\s*(name|source_run_id|model_type)\s*=\s*'((?:[^']|'')*)'\s*", re.IGNORECASE)
_COLUMNS = {"name": "name", "source_run_id": "run_id", "model_type": "model_type"}


def _equalities(text: str | None) -> dict[str, str]:
    """MLflow's logged-model filter, the part loopml serves: `name = '...'`, `source_run_id = '...'` and
    `model_type = '...'` joined by AND (what the MLflow client itself sends)."""
    found: dict[str, str] = {}
    for clause in re.split(r"\s+AND\s+", text or "", flags=re.IGNORECASE) if text and text.strip() else []:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise InvalidInput(
                f"loopml filters logged models by name, source_run_id and model_type with '=' joined by AND; "
                f"cannot read {clause.strip()!r}"
            )
        found[_COLUMNS[match.group(1).lower()]] = match.group(2).replace("''", "'")
    return found


@router.post("/logged-models")
async def create_logged_model(
    request: Request, principal: CurrentPrincipal, tracking: Tracking, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    run_id = message.string("source_run_id")
    if not run_id:
        raise InvalidInput(
            "loopml keeps a logged model's files with the run that logged it: call log_model inside "
            "mlflow.start_run() (source_run_id is required)"
        )
    experiment = await run_in_threadpool(
        resolve_experiment_id, tracking, principal, message.required_string("experiment_id")
    )
    model = await run_in_threadpool(
        logged.create,
        principal,
        experiment,
        run_id,
        message.string("name"),
        message.string("model_type"),
        _pairs(message, "tags"),
        _pairs(message, "params"),
    )
    return {"model": logged_model_to_json(model)}


@router.post("/logged-models/search")
async def search_logged_models(
    request: Request, principal: CurrentPrincipal, tracking: Tracking, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    if message.repeated("order_by") or message.repeated("datasets"):
        raise InvalidInput("loopml searches logged models newest first, without order_by or datasets")
    equals = _equalities(message.string("filter"))
    ids = [
        await run_in_threadpool(resolve_experiment_id, tracking, principal, text)
        for text in message.strings("experiment_ids")
    ]
    page = await run_in_threadpool(
        logged.search,
        principal,
        ids,
        message.int64("max_results", default=100) or 100,
        message.string("page_token"),
        equals,
    )
    body: dict[str, Any] = {"models": [logged_model_to_json(m) for m in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


@router.get("/logged-models/{model_id}")
async def get_logged_model(model_id: str, principal: CurrentPrincipal, logged: LoggedModels) -> Any:
    model = await run_in_threadpool(logged.get, principal, model_id)
    return {"model": logged_model_to_json(model)}


@router.patch("/logged-models/{model_id}")
async def finalize_logged_model(
    model_id: str, request: Request, principal: CurrentPrincipal, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    try:  # an enum: its name, or its number as proto3-JSON allows
        raw: object = message.string("status")
    except InvalidRequest:
        raw = message.int64("status")
    status = LOGGED_STATUS_FROM_MLFLOW.get(str(raw)) if raw is not None else None
    if status is None:
        raise InvalidInput(
            f"Invalid value {raw!r} for parameter 'status': expected LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"
        )
    model = await run_in_threadpool(logged.finalize, principal, model_id, status.value)
    return {"model": logged_model_to_json(model)}


@router.patch("/logged-models/{model_id}/tags")
async def set_logged_model_tags(
    model_id: str, request: Request, principal: CurrentPrincipal, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    await run_in_threadpool(logged.set_tags, principal, model_id, _pairs(message, "tags"))
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
async def delete_logged_model_tag(
    model_id: str, tag_key: str, principal: CurrentPrincipal, logged: LoggedModels
) -> Any:
    await run_in_threadpool(logged.delete_tag, principal, model_id, tag_key)
    return {}


@router.post("/logged-models/{model_id}/params")
async def log_logged_model_params(
    model_id: str, request: Request, principal: CurrentPrincipal, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    await run_in_threadpool(logged.log_params, principal, model_id, _pairs(message, "params"))
    return {}
