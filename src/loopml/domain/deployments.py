"""Deployments: a named endpoint, the model versions serving it with their traffic weights, and the
decisions a rollout controller takes about a candidate version.

A deployment changes by revisions (every change is a new revision, kept as history). Strategies:
`direct` (all traffic to one version; blue-green switch and instant rollback), `canary` (stepped weights,
each step held for an analysis window), `shadow` (the candidate gets a copy of live traffic; its answers
are logged, never returned) and `ab` (a fixed split, sticky by a request key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Strategy = Literal["direct", "canary", "shadow", "ab"]
VersionRole = Literal["stable", "canary", "shadow"]
DeploymentState = Literal["stable", "progressing", "paused", "rolled_back", "promoted"]
Outcome = Literal["success", "failed", "inconclusive"]

STRATEGIES: tuple[Strategy, ...] = ("direct", "canary", "shadow", "ab")
VERSION_ROLES: tuple[VersionRole, ...] = ("stable", "canary", "shadow")
DEPLOYMENT_STATES: tuple[DeploymentState, ...] = ("stable", "progressing", "paused", "rolled_back", "promoted")
OUTCOMES: tuple[Outcome, ...] = ("success", "failed", "inconclusive")


@dataclass(frozen=True, slots=True)
class DeploymentVersion:
    """One model version in a deployment: its traffic weight (0-100) and role."""

    model: str
    version: int
    weight: int
    role: VersionRole = "stable"

    @property
    def label(self) -> str:
        return f"{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    project: str
    strategy: Strategy
    revision: int
    versions: tuple[DeploymentVersion, ...]
    state: DeploymentState
    canary_steps: tuple[int, ...] = ()
    step_index: int = 0
    """Index in `canary_steps` of the weight the candidate has now."""
    analysis_seconds: int = 300
    thresholds: dict[str, Any] = field(default_factory=dict)
    sticky_key: str | None = None
    created_at: int = 0
    updated_at: int = 0
    """When the current revision was made (the current canary step started then)."""
    failures: int = 0
    """Failed analyses so far in the current rollout (rolled back when it reaches the failure limit)."""
    follows_alias: str | None = None
    """The alias of the stable version's model this deployment was deployed by (`bike@champion`): promoting a
    candidate of that model moves the alias to it."""
    feature_service: str | None = None
    """A feature service of the deployment's project: replicas fetch its features by the request's entity keys."""
    missing_features: str = "refuse"
    """What an entity with no feature value (within the TTL) gets: `refuse` (404) or `default` (declared defaults)."""

    def role(self, role: VersionRole) -> DeploymentVersion | None:
        """The first version with `role`, if any."""
        return next((v for v in self.versions if v.role == role), None)

    @property
    def stable(self) -> DeploymentVersion | None:
        return self.role("stable")

    @property
    def candidate(self) -> DeploymentVersion | None:
        """The version under evaluation: the canary, or the shadow."""
        return self.role("canary") or self.role("shadow")


@dataclass(frozen=True, slots=True)
class DeploymentRevision:
    """One entry of a deployment's history: the whole deployment as it was at `revision`."""

    deployment: Deployment
    revision: int
    actor: str
    reason: str
    created_at: int


@dataclass(frozen=True, slots=True)
class RolloutDecision:
    """The outcome of one analysis of a candidate against the stable version, with the numbers behind it."""

    deployment: str
    revision: int
    step: int
    """The canary step analysed, counted from 1 (as in `loopml deploy status` and the reasons)."""
    outcome: Outcome
    metrics: dict[str, Any]
    reason: str
    time: int
    action: str = "hold"
    """What the controller did about it: `advance`, `promote`, `rollback` or `hold`."""
