"""Deployments and progressive delivery (`client.deployments`)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.api import deploy as ops
from loopml.domain import Deployment, DeploymentRevision, RolloutDecision

if TYPE_CHECKING:
    from loopml.client.client import Client


class Deployments:
    """Deployments and progressive delivery (`client.deployments`; `loopml deploy` on the command line).

    client.deployments.deploy("bike-demand", "bike-demand@champion")                 # direct
    client.deployments.deploy("bike-demand", "bike-demand@challenger", strategy="canary",
                              canary_steps=(10, 50, 100), analysis_seconds=300)
    client.deployments.rollback("bike-demand", reason="p99 too high")
    """

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def deploy(
        self,
        name: str,
        model: str,
        strategy: str = "direct",
        canary_steps: Sequence[int] = (10, 50, 100),
        analysis_seconds: int = 300,
        thresholds: Mapping[str, float] | None = None,
        sticky_key: str | None = None,
        ab_weight: int | None = None,
        reason: str | None = None,
        feature_service: str | None = None,
        missing_features: str = "refuse",
    ) -> Deployment:
        """Deploy the version `model` names (`name@alias`, `name/3`) to deployment `name` with `strategy`
        (`direct`, `canary`, `shadow` or `ab`); the reference is resolved to a version number now.
        With `feature_service`, replicas fetch its features by the request's entity keys before `predict`
        (`missing_features`: `refuse` answers 404 for an entity without values, `default` serves the defaults)."""
        return self._backend.call(
            ops.DEPLOY,
            name=name,
            model_ref=model,
            strategy=strategy,
            canary_steps=canary_steps,
            analysis_seconds=analysis_seconds,
            thresholds=thresholds,
            sticky_key=sticky_key,
            ab_weight=ab_weight,
            reason=reason,
            feature_service=feature_service,
            missing_features=missing_features,
        )

    def list(self) -> list[Deployment]:
        return self._backend.call(ops.LIST_DEPLOYMENTS)

    def status(self, name: str) -> Deployment:
        return self._backend.call(ops.GET_DEPLOYMENT, name=name)

    def rollback(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.call(ops.ROLLBACK_DEPLOYMENT, name=name, reason=reason)

    def promote(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.call(ops.PROMOTE_DEPLOYMENT, name=name, reason=reason)

    def pause(self, name: str, reason: str | None = None) -> Deployment:
        """Hold a canary rollout at its current split; the rollout controller decides nothing until `resume`."""
        return self._backend.call(ops.PAUSE_DEPLOYMENT, name=name, reason=reason)

    def resume(self, name: str, reason: str | None = None) -> Deployment:
        """Continue a paused canary rollout; the current step's analysis window starts again now."""
        return self._backend.call(ops.RESUME_DEPLOYMENT, name=name, reason=reason)

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentRevision]:
        """The revisions of deployment `name`, newest first."""
        return self._backend.call(ops.DEPLOYMENT_HISTORY, name=name, limit=limit)

    def decisions(self, name: str, limit: int = 100) -> builtins.list[RolloutDecision]:
        """The rollout controller's decisions about `name`, oldest first, with their numbers."""
        return self._backend.call(ops.DEPLOYMENT_DECISIONS, name=name, limit=limit)

    def shadow_comparison(self, name: str, window_seconds: int = 3600, tolerance: float = 1e-6) -> dict[str, Any]:
        """Agreement rate, prediction differences and latencies of the shadow version against the live one."""
        return self._backend.call(ops.SHADOW_COMPARISON, name=name, window_seconds=window_seconds, tolerance=tolerance)
