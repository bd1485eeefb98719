"""Deployments and progressive delivery (`client.deployments`)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
    ) -> Deployment:
        """Deploy the version `model` names (`name@alias`, `name/3`) to deployment `name` with `strategy`
        (`direct`, `canary`, `shadow` or `ab`); the reference is resolved to a version number now."""
        return self._backend.deploy(
            name, model, strategy, canary_steps, analysis_seconds, thresholds, sticky_key, ab_weight, reason
        )

    def list(self) -> list[Deployment]:
        return self._backend.list_deployments()

    def status(self, name: str) -> Deployment:
        return self._backend.get_deployment(name)

    def rollback(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.rollback_deployment(name, reason)

    def promote(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.promote_deployment(name, reason)

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentRevision]:
        """The revisions of deployment `name`, newest first."""
        return self._backend.deployment_history(name, limit)

    def decisions(self, name: str, limit: int = 100) -> builtins.list[RolloutDecision]:
        """The rollout controller's decisions about `name`, oldest first, with their numbers."""
        return self._backend.deployment_decisions(name, limit)

    def shadow_comparison(self, name: str, window_seconds: int = 3600, tolerance: float = 1e-6) -> dict[str, Any]:
        """Agreement rate, prediction differences and latencies of the shadow version against the live one."""
        return self._backend.shadow_comparison(name, window_seconds, tolerance)
