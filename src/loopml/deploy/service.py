"""The deploy service: deployments in the metadata store, their strategies, rollbacks and rollout decisions.

A deployment's model reference is resolved when it is deployed (`bike@champion` -> version 3) and the
version number is stored, never the alias: moving the alias later does not change what serves. Every change
is a new revision (the history) and an audit event.
"""

from __future__ import annotations

import builtins
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from loopml.deploy.analysis import Thresholds, WindowStats, flatten_predictions
from loopml.deploy.windows import RequestLogReader, percentiles
from loopml.domain import (
    Deployment,
    DeploymentRevision,
    DeploymentVersion,
    ModelVersionStatus,
    Principal,
    Role,
    RolloutDecision,
)
from loopml.domain.deployments import STRATEGIES, Outcome, Strategy
from loopml.domain.models import LATEST, parse_model_uri
from loopml.domain.validation import check_name
from loopml.errors import AliasNotFound, DeploymentNotFound, InvalidInput, InvalidName
from loopml.registry import RegistryService
from loopml.store import MetadataStore, Unit

__all__ = ["CONTROLLER_ACTOR", "DeployService"]

CONTROLLER_ACTOR = "loopml:rollout-controller"
"""The actor of the audit events the rollout controller writes."""
MAX_ANALYSIS_SECONDS = 7 * 24 * 3600
MAX_REASON = 2000
MAX_LIMIT = 10_000


def check_deployment_name(name: object) -> str:
    """A deployment name: a model-style name (no `/` or `@`, not `.` or `..`), as it is a segment of URLs."""
    name = check_name("deployment", name)
    if "/" in name or "@" in name or name.strip() in (".", "..") or name != name.strip():
        raise InvalidName(
            f"deployment name {name!r} must not contain '/' or '@', be '.' or '..', or start or end with whitespace"
        )
    return name


def check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    """Canary weights: 1 to 20 strictly increasing percentages from 1 to 100."""
    checked = tuple(steps)
    if not checked or len(checked) > 20:
        raise InvalidInput(f"canary steps must be 1 to 20 weights, got {len(checked)}")
    for step in checked:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100:
            raise InvalidInput(f"canary steps are percentages from 1 to 100, got {step!r}")
    if any(b <= a for a, b in itertools.pairwise(checked)):
        raise InvalidInput(f"canary steps must increase, got {', '.join(map(str, checked))}")
    return checked


def _check_reason(reason: object) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON or "\x00" in reason:
        raise InvalidInput(f"reason must be a string of at most {MAX_REASON} characters without NUL")
    return reason


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def _split(stable: DeploymentVersion, candidate: DeploymentVersion, weight: int) -> tuple[DeploymentVersion, ...]:
    """Stable and candidate with `weight`% to the candidate."""
    return (replace(stable, weight=100 - weight, role="stable"), replace(candidate, weight=weight))


class DeployService:
    """Deployments: deploy, roll back, promote, read status and history. Viewers read, editors change; a
    token scoped to a project sees only that project's deployments (others are reported as not existing).

    `request_log` is the directory serving replicas write their request log to (see `loopml.deploy.windows`);
    the rollout analysis and the shadow comparison read it."""

    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        request_log: Path | str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.request_log = RequestLogReader(request_log) if request_log is not None else None

    # -- reads -------------------------------------------------------------------------------------

    def _visible(self, unit: Unit, principal: Principal, name: str, lock: bool = False) -> Deployment:
        check_deployment_name(name)
        found = unit.deployments.find(name, lock=lock)
        if found is None or not principal.can_see(found.project):
            raise DeploymentNotFound(f"deployment {name!r} does not exist")
        return found

    def status(self, principal: Principal, name: str) -> Deployment:
        with self.store.read() as unit:
            return self._visible(unit, principal, name)

    def list(self, principal: Principal) -> list[Deployment]:
        with self.store.read() as unit:
            return unit.deployments.list(principal.project)

    def history(self, principal: Principal, name: str, limit: int = 100) -> builtins.list[DeploymentRevision]:
        """The revisions of `name`, newest first."""
        count = _check_limit(limit)
        with self.store.read() as unit:
            self._visible(unit, principal, name)
            return unit.deployments.history(name, count)

    def decisions(self, principal: Principal, name: str, limit: int = 100) -> builtins.list[RolloutDecision]:
        """The rollout decisions about `name`, oldest first (the newest `limit`)."""
        count = _check_limit(limit)
        with self.store.read() as unit:
            self._visible(unit, principal, name)
            return unit.deployments.decisions(name, count)

    # -- changes -----------------------------------------------------------------------------------

    def deploy(
        self,
        principal: Principal,
        name: str,
        model_ref: str,
        strategy: str = "direct",
        canary_steps: Sequence[int] = (10, 50, 100),
        analysis_seconds: int = 300,
        thresholds: Mapping[str, object] | None = None,
        sticky_key: str | None = None,
        ab_weight: int | None = None,
        reason: str | None = None,
        feature_service: str | None = None,
        missing_features: str = "refuse",
    ) -> Deployment:
        """Deploy the version `model_ref` names (`name@alias`, `name/3`, `models:/...`) to deployment `name`.

        `direct`: all traffic to it at once (a blue-green switch; creates the deployment if new). `canary`:
        the first of `canary_steps` percent to it, the rest to the stable version; the rollout controller moves
        through the steps, each held for `analysis_seconds` and analysed against `thresholds`. `shadow`: it gets
        a copy of live traffic, its answers logged and never returned. `ab`: `ab_weight` percent (default 50)
        to it for good, sticky by the request field `sticky_key`. All but `direct` need a stable version.

        `feature_service` names a feature service of the model's project: replicas then take its entity keys
        in the request and fetch its features before `predict`; `missing_features` says what an entity with no
        value gets (`refuse`: a 404; `default`: the declared defaults)."""
        principal.require(Role.EDITOR)
        if missing_features not in ("refuse", "default"):
            raise InvalidInput(f"missing_features must be 'refuse' or 'default', got {missing_features!r}")
        check_deployment_name(name)
        if strategy not in STRATEGIES:
            raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        kind: Strategy = strategy
        steps = check_steps(canary_steps)
        if isinstance(analysis_seconds, bool) or not isinstance(analysis_seconds, int):
            raise InvalidInput(f"analysis_seconds must be an integer, got {analysis_seconds!r}")
        if not 1 <= analysis_seconds <= MAX_ANALYSIS_SECONDS:
            raise InvalidInput(f"analysis_seconds must be from 1 to {MAX_ANALYSIS_SECONDS}, got {analysis_seconds}")
        limits = Thresholds.from_mapping(thresholds).to_json()
        if sticky_key is not None and (not isinstance(sticky_key, str) or not 1 <= len(sticky_key) <= 250):
            raise InvalidInput("sticky_key must be a request field name of 1 to 250 characters")
        if ab_weight is not None and kind != "ab":
            raise InvalidInput("ab_weight applies to the ab strategy only")
        weight = 50 if ab_weight is None else ab_weight
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 99:
            raise InvalidInput(f"ab_weight must be a percentage from 1 to 99, got {weight!r}")
        why = _check_reason(reason)
        version = self.registry.resolve(principal, model_ref)
        alias = parse_model_uri(model_ref).alias
        if version.status is not ModelVersionStatus.READY:
            raise InvalidInput(f"version {version.version} of model {version.name!r} is {version.status.value}")
        project = self.registry.get_model(principal, version.name).project
        target = DeploymentVersion(version.name, version.version, 100, "stable")
        with self.store.write(principal.actor) as unit:
            current = unit.deployments.find(name, lock=True)
            if current is not None and not principal.can_see(current.project):
                raise DeploymentNotFound(f"deployment {name!r} does not exist")
            if feature_service is not None:
                _check_feature_service(unit, project, feature_service)
            if current is not None and current.project != project:
                raise InvalidInput(
                    f"deployment {name!r} is in project {current.project!r} and model {version.name!r} in "
                    f"{project!r}; deploy models of the deployment's project"
                )
            base = Deployment(
                name=name,
                project=project,
                strategy=kind,
                revision=0,
                versions=(target,),
                state="stable",
                analysis_seconds=analysis_seconds,
                thresholds=limits,
                sticky_key=sticky_key,
                feature_service=feature_service,
                missing_features=missing_features,
            )
            if kind == "direct":
                new = replace(base, follows_alias=alias if alias != LATEST else None)
                why = why or f"deploy {target.label}"
            else:
                stable = current.stable if current is not None else None
                if stable is None:
                    raise InvalidInput(
                        f"a {kind} deployment needs a stable version to compare with: deploy one to {name!r} "
                        "with the direct strategy first"
                    )
                if (stable.model, stable.version) == (target.model, target.version):
                    raise InvalidInput(f"{target.label} is already the stable version of {name!r}")
                base = replace(base, follows_alias=current.follows_alias if current is not None else None)
                if kind == "canary":
                    if steps[0] == 100:
                        raise InvalidInput("the first canary step must be below 100 (direct switches all traffic)")
                    versions = _split(stable, replace(target, role="canary"), steps[0])
                    new = replace(base, versions=versions, state="progressing", canary_steps=steps)
                elif kind == "shadow":
                    versions = (replace(stable, weight=100), replace(target, weight=0, role="shadow"))
                    new = replace(base, versions=versions)
                else:
                    new = replace(base, versions=_split(stable, replace(target, role="canary"), weight))
                why = why or f"{kind} {target.label} against stable {stable.label}"
            return unit.deployments.save(unit.projects.get_or_create(project), new, why)

    def rollback(self, principal: Principal, name: str, reason: str | None = None) -> Deployment:
        """Undo the latest change at once: a candidate (canary, A/B or shadow) gets weight 0 and the stable
        version all traffic; with no candidate, the previous stable version serves again."""
        principal.require(Role.EDITOR)
        why = _check_reason(reason)
        with self.store.write(principal.actor) as unit:
            current = self._visible(unit, principal, name, lock=True)
            return self._rollback(unit, current, why)

    def _rollback(self, unit: Unit, current: Deployment, why: str, at: int | None = None) -> Deployment:
        project = unit.projects.get(current.project)
        stable = current.stable
        candidate = current.candidate
        if stable is not None and candidate is not None and (candidate.weight > 0 or candidate.role == "shadow"):
            # a rolled-back canary stays listed at weight 0 (status shows what was rolled back); a shadow is
            # removed, as a shadow at weight 0 would still receive copies of the traffic
            kept = () if candidate.role == "shadow" else (replace(candidate, weight=0),)
            new = replace(current, versions=(replace(stable, weight=100), *kept), state="rolled_back")
            return unit.deployments.save(project, new, why or f"roll back {candidate.label}", at)
        for entry in unit.deployments.history(current.name, MAX_LIMIT):
            previous = entry.deployment.stable
            if previous is not None and stable is not None and previous.label != stable.label:
                new = replace(
                    current,
                    strategy="direct",
                    versions=(replace(previous, weight=100, role="stable"),),
                    state="rolled_back",
                    failures=0,
                )
                return unit.deployments.save(project, new, why or f"roll back to {previous.label}", at)
        raise InvalidInput(f"deployment {current.name!r} has no earlier version to roll back to")

    def promote(self, principal: Principal, name: str, reason: str | None = None) -> Deployment:
        """Make the candidate the stable version at 100% now (skipping any remaining canary steps)."""
        principal.require(Role.EDITOR)
        why = _check_reason(reason)
        with self.store.write(principal.actor) as unit:
            current = self._visible(unit, principal, name, lock=True)
            return self._promote(unit, current, why)

    def _promote(self, unit: Unit, current: Deployment, why: str, at: int | None = None) -> Deployment:
        candidate = current.candidate
        if candidate is None or (candidate.weight == 0 and candidate.role != "shadow"):
            raise InvalidInput(f"deployment {current.name!r} has no candidate version to promote")
        new = replace(
            current,
            strategy="direct",
            versions=(replace(candidate, weight=100, role="stable"),),
            state="promoted",
            failures=0,
        )
        why = why or f"promote {candidate.label}"
        moved = self._move_followed_alias(unit, current, candidate)
        if moved is not None:
            why = f"{why}; {moved}"
        if current.stable is not None and candidate.model != current.stable.model:
            new = replace(new, follows_alias=None)  # the alias names a version of the old model
        return unit.deployments.save(unit.projects.get(current.project), new, why, at)

    def pause(self, principal: Principal, name: str, reason: str | None = None) -> Deployment:
        """Hold a canary rollout where it is: the split stays as it is and the rollout controller takes no
        decision until `resume` (a new revision, audited with `reason`)."""
        principal.require(Role.EDITOR)
        why = _check_reason(reason)
        with self.store.write(principal.actor) as unit:
            current = self._visible(unit, principal, name, lock=True)
            if current.state != "progressing":
                raise InvalidInput(
                    f"deployment {name!r} has no rollout in progress to pause (its state is {current.state!r})"
                )
            new = replace(current, state="paused")
            return unit.deployments.save(unit.projects.get(current.project), new, why or "pause the rollout")

    def resume(self, principal: Principal, name: str, reason: str | None = None) -> Deployment:
        """Continue a paused canary rollout: the current step's analysis window starts again now."""
        principal.require(Role.EDITOR)
        why = _check_reason(reason)
        with self.store.write(principal.actor) as unit:
            current = self._visible(unit, principal, name, lock=True)
            if current.state != "paused":
                raise InvalidInput(f"deployment {name!r} is not paused (its state is {current.state!r})")
            new = replace(current, state="progressing")
            return unit.deployments.save(unit.projects.get(current.project), new, why or "resume the rollout")

    def _move_followed_alias(self, unit: Unit, current: Deployment, candidate: DeploymentVersion) -> str | None:
        """Point the alias the deployment follows at the promoted `candidate` (audited as `model.set_alias`,
        in the promotion's transaction), so the alias and what serves agree. Left alone, and said so, when
        the alias has since been moved or deleted by someone, or names another model's versions."""
        alias, stable = current.follows_alias, current.stable
        if alias is None or stable is None:
            return None
        if candidate.model != stable.model:
            return f"alias {stable.model}@{alias} not moved: {candidate.label} is a version of another model"
        model = unit.models.lock(stable.model)
        try:
            pointed = unit.model_versions.alias(model, alias)
        except AliasNotFound:
            return f"alias {stable.model}@{alias} not moved: it no longer exists"
        if pointed != stable.version:
            return f"alias {stable.model}@{alias} not moved: it points at version {pointed}, not {stable.version}"
        if unit.model_versions.get(model, candidate.version).status is not ModelVersionStatus.READY:
            return f"alias {stable.model}@{alias} not moved: {candidate.label} is no longer READY"
        reason = f"promotion of {candidate.label} in deployment {current.name!r}"
        unit.model_versions.set_alias(model, alias, candidate.version, reason)
        return f"alias {stable.model}@{alias} moved from {stable.version} to {candidate.version}"

    # -- the rollout controller's side -------------------------------------------------------------

    def progressing(self) -> builtins.list[Deployment]:
        """Every canary rollout in progress (across projects: for the controller)."""
        with self.store.read() as unit:
            return [d for d in unit.deployments.list() if d.strategy == "canary" and d.state == "progressing"]

    def labels(self, request_ids: builtins.list[str], project: str = "") -> dict[str, object]:
        """The labels that have arrived (feedback by request id) for `request_ids`: those sent with a token of
        `project` and the global ones, never another project's."""
        with self.store.read() as unit:
            found = unit.monitoring.labels(request_ids, project=project)
        return {key: label for key, (label, _at) in found.items()}

    def window_stats(self, deployment: str, start_ms: int, end_ms: int) -> dict[tuple[str, int], WindowStats]:
        """Each version's requests in the window from the request log, with the labels of the deployment's
        project that have arrived."""
        if self.request_log is None:
            return {}
        with self.store.read() as unit:
            found = unit.deployments.find(deployment)
        project = "" if found is None else found.project
        return self.request_log.stats(deployment, start_ms, end_ms, lambda ids: self.labels(ids, project))

    def last_decision(self, name: str) -> RolloutDecision | None:
        with self.store.read() as unit:
            found = unit.deployments.decisions(name, 1)
        return found[-1] if found else None

    def apply_analysis(
        self, deployment: Deployment, outcome: Outcome, numbers: dict[str, Any], reason: str, now_ms: int
    ) -> RolloutDecision | None:
        """Record one analysis of `deployment` and act on it, in one transaction: success moves to the next
        canary step (or promotes after the last, or when the next step is 100%), a failure rolls back once
        `failure_limit` failures add up (below it the step starts over), inconclusive holds. None if the
        deployment changed meanwhile (a person deployed, rolled back or promoted): the analysis is then stale
        and dropped."""
        limits = Thresholds.from_mapping(deployment.thresholds)
        with self.store.write(CONTROLLER_ACTOR) as unit:
            current = unit.deployments.find(deployment.name, lock=True)
            if current is None or current.revision != deployment.revision or current.state != "progressing":
                return None
            stable, candidate = current.stable, current.role("canary")
            if stable is None or candidate is None:
                return None
            step = current.step_index
            action = "hold"
            if outcome == "success":
                # a step of 100% is the promotion itself (the stable version would get no traffic to compare)
                if step + 1 < len(current.canary_steps) and current.canary_steps[step + 1] < 100:
                    action = "advance"
                    weight = current.canary_steps[step + 1]
                    new = replace(current, versions=_split(stable, candidate, weight), step_index=step + 1)
                    why = f"analysis passed at {candidate.weight}%: {candidate.label} to {weight}%"
                    unit.deployments.save(unit.projects.get(current.project), new, why, now_ms)
                else:
                    action = "promote"
                    self._promote(unit, current, f"analysis passed at the last step: promote {candidate.label}", now_ms)
            elif outcome == "failed":
                failures = current.failures + 1
                numbers = {**numbers, "failures": failures}
                if failures >= limits.failure_limit:
                    action = "rollback"
                    self._rollback(unit, current, f"automatic rollback of {candidate.label}: {reason}", now_ms)
                else:
                    new = replace(current, failures=failures)
                    why = f"analysis failed ({failures} of {limits.failure_limit}); step {step + 1} starts over"
                    unit.deployments.save(unit.projects.get(current.project), new, why, now_ms)
            decision = RolloutDecision(
                deployment=current.name,
                revision=current.revision,
                step=step + 1,
                outcome=outcome,
                metrics=numbers,
                reason=reason,
                time=now_ms,
                action=action,
            )
            return unit.deployments.record_decision(decision)

    # -- shadow comparison -------------------------------------------------------------------------

    def shadow_comparison(
        self,
        principal: Principal,
        name: str,
        window_seconds: int = 3600,
        tolerance: float = 1e-6,
        now_ms: int | None = None,
    ) -> dict[str, Any]:
        """How the shadow version's answers compare with the live ones, over the last `window_seconds`:
        the share of requests on which they agree (numbers within `tolerance`), the distribution of the
        prediction differences (shadow minus live) and both latencies."""
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int) or window_seconds < 1:
            raise InvalidInput(f"window_seconds must be a positive integer, got {window_seconds!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance >= 0:
            raise InvalidInput(f"tolerance must be a number >= 0, got {tolerance!r}")
        deployment = self.status(principal, name)
        shadow = deployment.role("shadow")
        if shadow is None:
            raise InvalidInput(f"deployment {name!r} has no shadow version (deploy one with strategy shadow)")
        end = now_ms if now_ms is not None else _now_ms()
        start = end - window_seconds * 1000
        rows = self.request_log.rows(name, start, end) if self.request_log is not None else []
        live = {r["request_id"]: r for r in rows if r["role"] != "shadow" and int(r["status"]) < 400}
        shadowed = {
            r["request_id"]: r
            for r in rows
            if r["role"] == "shadow" and (r["model"], int(r["version"])) == (shadow.model, shadow.version)
        }
        pairs = [(live[k], shadowed[k]) for k in shadowed if k in live]
        agree = 0
        differences: list[float] = []
        for stable_row, shadow_row in pairs:
            a, b = orjson.loads(stable_row["outputs"]), orjson.loads(shadow_row["outputs"])
            x, y = flatten_predictions([a]), flatten_predictions([b])
            if x and len(x) == len(y):
                deltas = [q - p for p, q in zip(x, y, strict=True)]
                differences.extend(deltas)
                agree += all(abs(d) <= tolerance for d in deltas)
            else:
                agree += a == b
        return {
            "deployment": name,
            "shadow": shadow.label,
            "window": {"start_ms": start, "end_ms": end},
            "live_requests": len(live),
            "shadow_requests": len(shadowed),
            "compared": len(pairs),
            "agreement_rate": round(agree / len(pairs), 6) if pairs else None,
            "tolerance": tolerance,
            "difference": {
                **percentiles(differences, (1, 5, 25, 50, 75, 95, 99)),
                "mean_abs": round(sum(map(abs, differences)) / len(differences), 6) if differences else None,
            },
            "latency_ms": {
                "live": percentiles([float(r["latency_ms"]) for r in live.values()], (50, 99)),
                "shadow": percentiles([float(r["latency_ms"]) for r in shadowed.values()], (50, 99)),
            },
        }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_feature_service(unit: Unit, project: str, name: str) -> None:
    """A deployment names a feature service that exists in its project (replicas read it from there)."""
    try:
        services = {d.name for d in unit.features.current(unit.projects.get(project)) if d.kind == "feature_service"}
    except LookupError:
        services = set()
    if name not in services:
        known = ", ".join(sorted(services)) or "none"
        raise InvalidInput(
            f"feature service {name!r} does not exist in project {project!r} (apply it first; defined: {known})"
        )
