"""Deployments: deploy (direct, canary, shadow, A/B), status, rollback, promote, history, rollout decisions
and the shadow comparison."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from loopml.domain.wire import deployment_revision_to_json, deployment_to_json, rollout_decision_to_json
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Deploy
from loopml.server.fields import Integer, Key, Name, Number

router = APIRouter(tags=["deployments"])

DeploymentName = Annotated[str, Path(min_length=1, max_length=250)]
Reason = Annotated[str, Field(max_length=2000)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


class CreateDeployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    model: Annotated[str, Field(min_length=1, max_length=600)]
    """`name@alias`, `name/3` or a `models:/` URI; resolved to a version number now."""
    strategy: Literal["direct", "canary", "shadow", "ab"] = "direct"
    canary_steps: Annotated[list[Integer], Field(min_length=1, max_length=20)] = [10, 50, 100]
    analysis_seconds: Annotated[Integer, Field(ge=1, le=7 * 24 * 3600)] = 300
    thresholds: Annotated[dict[Key, Number | Integer], Field(max_length=20)] | None = None
    sticky_key: Name | None = None
    ab_weight: Annotated[Integer, Field(ge=1, le=99)] | None = None
    reason: Reason | None = None


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


@router.post("/deployments")
def deploy(body: CreateDeployment, principal: CurrentPrincipal, service: Deploy) -> dict[str, Any]:
    deployment = service.deploy(
        principal,
        body.name,
        body.model,
        body.strategy,
        tuple(body.canary_steps),
        body.analysis_seconds,
        body.thresholds,
        body.sticky_key,
        body.ab_weight,
        body.reason,
    )
    return {"deployment": deployment_to_json(deployment)}


@router.get("/deployments")
def list_deployments(principal: CurrentPrincipal, service: Deploy) -> dict[str, Any]:
    return {"deployments": [deployment_to_json(d) for d in service.list(principal)]}


@router.get("/deployments/{name}")
def get_deployment(name: DeploymentName, principal: CurrentPrincipal, service: Deploy) -> dict[str, Any]:
    return {"deployment": deployment_to_json(service.status(principal, name))}


@router.post("/deployments/{name}/rollback")
def rollback(name: DeploymentName, body: Change, principal: CurrentPrincipal, service: Deploy) -> dict[str, Any]:
    return {"deployment": deployment_to_json(service.rollback(principal, name, body.reason))}


@router.post("/deployments/{name}/promote")
def promote(name: DeploymentName, body: Change, principal: CurrentPrincipal, service: Deploy) -> dict[str, Any]:
    return {"deployment": deployment_to_json(service.promote(principal, name, body.reason))}


@router.get("/deployments/{name}/history")
def history(name: DeploymentName, principal: CurrentPrincipal, service: Deploy, limit: Limit = 100) -> dict[str, Any]:
    return {"revisions": [deployment_revision_to_json(r) for r in service.history(principal, name, limit)]}


@router.get("/deployments/{name}/decisions")
def decisions(name: DeploymentName, principal: CurrentPrincipal, service: Deploy, limit: Limit = 100) -> dict[str, Any]:
    return {"decisions": [rollout_decision_to_json(d) for d in service.decisions(principal, name, limit)]}


@router.get("/deployments/{name}/shadow-comparison")
def shadow_comparison(
    name: DeploymentName,
    principal: CurrentPrincipal,
    service: Deploy,
    window_seconds: Annotated[int, Query(ge=1, le=30 * 24 * 3600)] = 3600,
    tolerance: Annotated[float, Query(ge=0, le=1e12)] = 1e-6,
) -> dict[str, Any]:
    return {"comparison": service.shadow_comparison(principal, name, window_seconds, tolerance)}
