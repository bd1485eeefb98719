"""Experiments: list (optionally by name), get-or-create, get."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from loopml.domain.wire import experiment_to_json
from loopml.errors import ExperimentNotFound
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.fields import INT32, Name

router = APIRouter(tags=["experiments"])


class CreateExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    project: Name | None = None


@router.get("/experiments")
def list_experiments(
    principal: CurrentPrincipal,
    tracking: Tracking,
    project: Annotated[str | None, Query(max_length=250)] = None,
    name: Annotated[str | None, Query(max_length=250)] = None,
) -> dict[str, Any]:
    if name is not None:
        try:
            found = [tracking.find_experiment(principal, name, project)]
        except ExperimentNotFound:
            found = []
    else:
        found = tracking.list_experiments(principal, project)
    return {"experiments": [experiment_to_json(e) for e in found]}


@router.post("/experiments")
def get_or_create_experiment(body: CreateExperiment, principal: CurrentPrincipal, tracking: Tracking) -> dict[str, Any]:
    experiment = tracking.get_or_create_experiment(principal, body.name, body.project)
    return {"experiment": experiment_to_json(experiment)}


@router.get("/experiments/{experiment_id}")
def get_experiment(
    experiment_id: Annotated[int, Path(ge=0, le=INT32)], principal: CurrentPrincipal, tracking: Tracking
) -> dict[str, Any]:
    return {"experiment": experiment_to_json(tracking.get_experiment(principal, experiment_id))}
