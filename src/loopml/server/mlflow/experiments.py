"""MLflow's experiment endpoints over `TrackingService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.mlflow.convert import experiment_to_json
from loopml.server.mlflow.protocol import MlflowResponse, MlflowRoute, read_message
from loopml.server.mlflow.resolve import find_experiment_by_name, resolve_experiment

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)


@router.post("/experiments/create")
async def create_experiment(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    name = message.required_string("name")
    experiment = await run_in_threadpool(tracking.create_experiment, principal, name)
    return {"experiment_id": str(experiment.id)}


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
