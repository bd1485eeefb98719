"""Deployment operations: deploy (direct, canary, shadow, A/B), status, rollback, promote, pause, resume,
history, rollout decisions and the shadow comparison."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from loopml.api.codecs import listed, one, raw
from loopml.api.fields import Integer, Key, Name, Number
from loopml.api.governance import NoArguments
from loopml.api.operation import Operation, Request
from loopml.domain import Deployment, DeploymentRevision, RolloutDecision, wire

DeploymentName = Annotated[str, Field(min_length=1, max_length=250)]
Reason = Annotated[str, Field(max_length=2000)]
Limit = Annotated[int, Field(ge=1, le=10_000)]

DEPLOYMENT = "deployment's project"


class Deploy(Request):
    name: Name
    model_ref: Annotated[str, Field(alias="model", min_length=1, max_length=600)]
    """`name@alias`, `name/3` or a `models:/` URI; resolved to a version number now."""
    strategy: Literal["direct", "canary", "shadow", "ab"] = "direct"
    canary_steps: Annotated[list[Integer], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: [10, 50, 100]
    )
    analysis_seconds: Annotated[Integer, Field(ge=1, le=7 * 24 * 3600)] = 300
    thresholds: Annotated[dict[Key, Number | Integer], Field(max_length=20)] | None = None
    sticky_key: Name | None = None
    ab_weight: Annotated[Integer, Field(ge=1, le=99)] | None = None
    reason: Reason | None = None
    feature_service: Name | None = None
    """A feature service of the deployment's project: replicas fetch its features by the request's entity keys."""
    missing_features: Literal["refuse", "default"] = "refuse"

    def arguments(self) -> dict[str, Any]:
        return super().arguments() | {"canary_steps": tuple(self.canary_steps)}


class DeploymentPath(Request):
    name: DeploymentName


class Change(Request):
    name: DeploymentName
    reason: Reason | None = None


class Listing(Request):
    name: DeploymentName
    limit: Limit = 100


class ShadowComparison(Request):
    name: DeploymentName
    window_seconds: Annotated[int, Field(ge=1, le=30 * 24 * 3600)] = 3600
    tolerance: Annotated[float, Field(ge=0, le=1e12)] = 1e-6


_deployment = one("deployment", wire.deployment_to_json, wire.deployment_from_json)

DEPLOY: Operation[Deployment] = Operation(
    "deploy", "deploy", "deploy", "editor", "path", "body.model -> model's project", "POST", "/deployments", Deploy,
    _deployment, "deployments",
)  # fmt: skip
LIST_DEPLOYMENTS: Operation[list[Deployment]] = Operation(
    "list_deployments", "deploy", "list", "viewer", "listing", DEPLOYMENT, "GET", "/deployments", NoArguments,
    listed("deployments", wire.deployment_to_json, wire.deployment_from_json), "deployments",
)  # fmt: skip
GET_DEPLOYMENT: Operation[Deployment] = Operation(
    "get_deployment", "deploy", "status", "viewer", "path", DEPLOYMENT, "GET", "/deployments/{name}",
    DeploymentPath, _deployment, "deployments",
)  # fmt: skip
ROLLBACK_DEPLOYMENT: Operation[Deployment] = Operation(
    "rollback_deployment", "deploy", "rollback", "editor", "path", DEPLOYMENT,
    "POST", "/deployments/{name}/rollback", Change, _deployment, "deployments",
)  # fmt: skip
PROMOTE_DEPLOYMENT: Operation[Deployment] = Operation(
    "promote_deployment", "deploy", "promote", "editor", "path", DEPLOYMENT,
    "POST", "/deployments/{name}/promote", Change, _deployment, "deployments",
)  # fmt: skip
PAUSE_DEPLOYMENT: Operation[Deployment] = Operation(
    "pause_deployment", "deploy", "pause", "editor", "path", DEPLOYMENT,
    "POST", "/deployments/{name}/pause", Change, _deployment, "deployments",
    summary="Hold a canary rollout at its current split; the controller decides nothing until resumed",
)  # fmt: skip
RESUME_DEPLOYMENT: Operation[Deployment] = Operation(
    "resume_deployment", "deploy", "resume", "editor", "path", DEPLOYMENT,
    "POST", "/deployments/{name}/resume", Change, _deployment, "deployments",
    summary="Continue a paused canary rollout; the current step's analysis window starts again",
)  # fmt: skip
DEPLOYMENT_HISTORY: Operation[list[DeploymentRevision]] = Operation(
    "deployment_history", "deploy", "history", "viewer", "path", DEPLOYMENT,
    "GET", "/deployments/{name}/history", Listing,
    listed("revisions", wire.deployment_revision_to_json, wire.deployment_revision_from_json), "deployments",
)  # fmt: skip
DEPLOYMENT_DECISIONS: Operation[list[RolloutDecision]] = Operation(
    "deployment_decisions", "deploy", "decisions", "viewer", "path", DEPLOYMENT,
    "GET", "/deployments/{name}/decisions", Listing,
    listed("decisions", wire.rollout_decision_to_json, wire.rollout_decision_from_json), "deployments",
)  # fmt: skip
SHADOW_COMPARISON: Operation[dict[str, Any]] = Operation(
    "shadow_comparison", "deploy", "shadow_comparison", "viewer", "path", DEPLOYMENT,
    "GET", "/deployments/{name}/shadow-comparison", ShadowComparison, raw("comparison"), "deployments",
)  # fmt: skip

OPERATIONS = (
    DEPLOY,
    LIST_DEPLOYMENTS,
    GET_DEPLOYMENT,
    ROLLBACK_DEPLOYMENT,
    PROMOTE_DEPLOYMENT,
    PAUSE_DEPLOYMENT,
    RESUME_DEPLOYMENT,
    DEPLOYMENT_HISTORY,
    DEPLOYMENT_DECISIONS,
    SHADOW_COMPARISON,
)
