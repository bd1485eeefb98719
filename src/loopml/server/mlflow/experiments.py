"""MLflow's experiment endpoints over `TrackingService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.domain import Experiment, Principal
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.errors import InvalidInput
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.mlflow.convert import experiment_to_json
from loopml.server.mlflow.protocol import Message, MlflowResponse, MlflowRoute, read_message
from loopml.server.mlflow.resolve import find_experiment_by_name, resolve_experiment, resolve_experiment_id
from loopml.server.mlflow.search import MAX_RESULTS, select_experiments, view_type
from loopml.tracking import TrackingService

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)


@router.post("/experiments/create")
async def create_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    experiment = await run_in_threadpool(_create, tracking, principal, message)
    return {"experiment_id": str(experiment.id)}


def _create(tracking: TrackingService, principal: Principal, message: Message) -> Experiment:
    name = message.required_string("name")
    tags = {t.required_string("key"): t.string("value", default="") or "" for t in message.messages("tags")}
    return tracking.create_experiment(principal, name, tags=tags)


@router.get("/experiments/get")
async def get_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    experiment = await run_in_threadpool(
        resolve_experiment, tracking, principal, message.required_string("experiment_id")
    )
    return {"experiment": experiment_to_json(experiment)}


@router.get("/experiments/get-by-name")
async def get_experiment_by_name(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    name = message.required_string("experiment_name")
    experiment = await run_in_threadpool(find_experiment_by_name, tracking, principal, name)
    return {"experiment": experiment_to_json(experiment)}


@router.post("/experiments/search")
async def search_experiments(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    return await run_in_threadpool(_search, tracking, principal, message)


def _search(tracking: TrackingService, principal: Principal, message: Message) -> dict[str, Any]:
    max_results = message.int64("max_results", default=1000)
    if max_results is None or not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"Invalid value {max_results} for parameter 'max_results' supplied: 1 to {MAX_RESULTS}")
    view = message.string("view_type")
    deleted = view_type(view)
    found = tracking.list_experiments(principal, deleted=deleted)
    found = select_experiments(found, message.string("filter"), message.strings("order_by"))
    offset = decode_page_token(message.string("page_token"))
    page = found[offset : offset + max_results]
    answer: dict[str, Any] = {"experiments": [experiment_to_json(e) for e in page]}
    if offset + max_results < len(found):
        answer["next_page_token"] = encode_page_token(offset + max_results)
    return answer


@router.post("/experiments/update")
async def update_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_rename, tracking, principal, message)
    return {}


def _rename(tracking: TrackingService, principal: Principal, message: Message) -> None:
    experiment = resolve_experiment_id(tracking, principal, message.required_string("experiment_id"))
    tracking.rename_experiment(principal, experiment, message.required_string("new_name"))


def _lifecycle(tracking: TrackingService, principal: Principal, message: Message, delete: bool) -> None:
    experiment = resolve_experiment_id(tracking, principal, message.required_string("experiment_id"))
    if delete:
        tracking.delete_experiment(principal, experiment)
    else:
        tracking.restore_experiment(principal, experiment)


@router.post("/experiments/delete")
async def delete_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_lifecycle, tracking, principal, message, True)
    return {}


@router.post("/experiments/restore")
async def restore_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_lifecycle, tracking, principal, message, False)
    return {}


def _tag(tracking: TrackingService, principal: Principal, message: Message, delete: bool) -> None:
    experiment = resolve_experiment_id(tracking, principal, message.required_string("experiment_id"))
    key = message.required_string("key")
    if delete:
        tracking.delete_experiment_tag(principal, experiment, key)
    else:
        tracking.set_experiment_tags(principal, experiment, {key: message.string("value", default="") or ""})


@router.post("/experiments/set-experiment-tag")
async def set_experiment_tag(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_tag, tracking, principal, message, False)
    return {}


@router.post("/experiments/delete-experiment-tag")
async def delete_experiment_tag(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    await run_in_threadpool(_tag, tracking, principal, message, True)
    return {}
