"""Retraining policies (create, read, delete) and their loops (read, approve, reject). The loops themselves are
moved by `RetrainController` inside `loopml server`; this service only writes and reads what it acts on, so
it works the same embedded and behind the REST API."""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from loopml.domain import Principal, Role
from loopml.domain.retrain import APPROVALS, ROLLOUTS, RetrainLoop, RetrainPolicy
from loopml.errors import (
    InvalidInput,
    MonitorNotFound,
    NotFound,
    PermissionDenied,
    RetrainLoopNotFound,
    RetrainPolicyNotFound,
)
from loopml.registry import RegistryService
from loopml.retraining.policies import parse_duration, parse_triggers
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

__all__ = ["RetrainService", "check_pipeline_exists"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")
_LOOP_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_REASON = 2000


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"retraining policy name {name!r} is not valid: start with a letter or digit, then up to 249 letters, "
            "digits, '_', '.' or '-' (e.g. the model's name, bike-demand)"
        )
    return name


def _check_loop_id(loop_id: object) -> str:
    if not isinstance(loop_id, str) or not _LOOP_ID.match(loop_id):
        raise InvalidInput(
            f"a loop id is 32 hexadecimal characters (see `loopml retrain runs POLICY`), got {loop_id!r}"
        )
    return loop_id


def _function_defined(source: str, function: str) -> bool:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == function for t in node.targets):
            return True
    return False


def check_pipeline_exists(reference: object) -> str:
    """`path.py:function` or `module:function` whose file exists and defines `function` (read, never run: the
    server does not execute user code to check a reference)."""
    text = reference.strip() if isinstance(reference, str) else ""
    where, _, function = text.rpartition(":")
    if not where or not function.isidentifier():
        raise InvalidInput(
            f"pipeline {reference!r} is not `module:function` or `path/to/file.py:function` "
            "(e.g. examples/bike/pipeline.py:retrain)"
        )
    if where.endswith(".py"):
        path = Path(where)
    else:
        try:
            spec = importlib.util.find_spec(where)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            raise InvalidInput(f"pipeline {text!r}: module {where!r} cannot be found on the server's Python path")
        path = Path(spec.origin)
    if not path.is_file():
        raise InvalidInput(
            f"pipeline {text!r}: file {where!r} does not exist on the server (paths are read relative to the "
            "server's working directory; give an absolute path)"
        )
    try:
        defined = _function_defined(path.read_text(encoding="utf-8"), function)
    except (SyntaxError, UnicodeDecodeError) as error:
        raise InvalidInput(f"pipeline {text!r}: {where} cannot be read as Python: {error}") from None
    if not defined:
        raise InvalidInput(f"pipeline {text!r}: {where} defines no {function!r} at its top level")
    return text


def _check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(params or {})
    if not all(isinstance(k, str) and k.isidentifier() for k in values):
        raise InvalidInput("params must map pipeline parameter names (identifiers) to values")
    try:
        orjson.dumps(values)
    except TypeError as error:
        raise InvalidInput(f"params must be JSON values: {error}") from None
    return values


def _check_reason(reason: object) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidInput(f"reason must be text of at most {MAX_REASON} characters")
    return reason


class RetrainService:
    """Viewers read policies and loops; editors create and delete policies and approve or reject loops. A
    token scoped to a project sees that project's policies only (others are reported as not existing)."""

    def __init__(self, store: MetadataStore, registry: RegistryService, default_project: str = "default") -> None:
        self.store = store
        self.registry = registry
        self.default_project = default_project

    # -- policies ----------------------------------------------------------------------------------

    def create_policy(
        self,
        principal: Principal,
        name: str,
        monitor: str,
        pipeline: str,
        triggers: Sequence[str | Mapping[str, Any]],
        *,
        model: str | None = None,
        gate: str | None = None,
        rollout: str = "canary",
        canary_steps: Sequence[int] | None = None,
        analysis_seconds: int | None = None,
        cooldown: str | int = "1d",
        max_loops: int = 2,
        period: str | int = "7d",
        approval: str = "auto",
        params: Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> RetrainPolicy:
        """Retrain `model` (default: `name`) with `pipeline` when a trigger fires, gate its challenger with
        `gate` (YAML text), roll it out with `rollout` to the monitor's deployment, then move `champion`.
        Guards: `cooldown` after a loop ends, at most `max_loops` started per `period`, one loop at a time,
        and with `approval="manual"` a person approves before rollout."""
        principal.require(Role.EDITOR)
        name = _check_name(name)
        target = _check_name(model if model is not None else name)
        found = parse_triggers(list(triggers) if isinstance(triggers, list | tuple) else triggers)
        if rollout not in ROLLOUTS:
            raise InvalidInput(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}")
        if approval not in APPROVALS:
            raise InvalidInput(f"approval must be one of {', '.join(APPROVALS)}, got {approval!r}")
        if gate is not None:  # a gate that cannot be read is refused now, not when a loop reaches it
            from loopml.gates import parse_policy

            parsed = parse_policy(gate)
            if (parsed.metrics or parsed.fairness) and label is None:
                raise InvalidInput(
                    "the gate policy checks metrics: give `label`, the label column of the fresh rows the pipeline "
                    "returns as an lm.Dataset (challenger and champion are scored on them)"
                )
        if label is not None and (not isinstance(label, str) or not 0 < len(label) <= 250):
            raise InvalidInput("label must be the name of the label column (1 to 250 characters)")
        cool = parse_duration("cooldown", cooldown)
        span = parse_duration("period", period)
        if span < 1:
            raise InvalidInput("period must be at least 1 second (e.g. 7d)")
        if isinstance(max_loops, bool) or not isinstance(max_loops, int) or not 1 <= max_loops <= 1000:
            raise InvalidInput(f"max_loops must be an integer from 1 to 1000, got {max_loops!r}")
        steps = tuple(canary_steps) if canary_steps is not None else (10, 50, 100)
        if (
            not steps
            or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 100 for s in steps)
            or list(steps) != sorted(set(steps))
            or steps[-1] != 100
            or steps[0] == 100
        ):
            raise InvalidInput(
                f"canary_steps must be increasing percentages ending at 100, e.g. [10, 50, 100], got {list(steps)!r}"
            )
        seconds = 300 if analysis_seconds is None else analysis_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 86_400:
            raise InvalidInput(f"analysis_seconds must be an integer from 1 to 86400, got {seconds!r}")
        reference = check_pipeline_exists(pipeline)
        values = _check_params(params)
        try:
            registered = self.registry.get_model(principal, target)
        except NotFound:
            if principal.project is not None and self._exists_elsewhere(target):
                raise PermissionDenied(
                    f"the token in use is scoped to project {principal.project!r}; model {target!r} is not in it"
                ) from None
            raise InvalidInput(
                f"model {target!r} is not registered (or not visible to this token): register it first, or name "
                "the registered model with --model"
            ) from None
        with self.store.write(principal.actor) as unit:
            try:
                watched = unit.monitors.get(monitor)
            except MonitorNotFound:
                raise InvalidInput(
                    f"monitor {monitor!r} does not exist: create it first (`loopml monitor create`)"
                ) from None
            deployment = unit.deployments.find(watched.deployment)
            if deployment is None or not principal.can_see(deployment.project):
                raise InvalidInput(
                    f"monitor {monitor!r} watches deployment {watched.deployment!r}, which does not exist: deploy "
                    f"a version of {target!r} to it first"
                )
            if deployment.project != registered.project:
                raise InvalidInput(
                    f"monitor {monitor!r} watches a deployment of project {deployment.project!r}, model {target!r} "
                    f"is in {registered.project!r}: a policy keeps to one project"
                )
            if not principal.can_see(registered.project):
                raise PermissionDenied(f"the token in use is scoped to project {principal.project!r}")
            at = now_ms()
            policy = RetrainPolicy(
                name=name,
                project=registered.project,
                model=target,
                monitor=monitor,
                pipeline=reference,
                triggers=found,
                gate=gate,
                rollout=rollout,
                canary_steps=steps,
                analysis_seconds=seconds,
                cooldown_seconds=cool,
                max_loops=max_loops,
                period_seconds=span,
                approval=approval,
                params=values,
                created_at=at,
                created_by=principal.actor,
                label=label,
            )
            return unit.retrain.create_policy(policy)

    def _exists_elsewhere(self, model: str) -> bool:
        try:
            self.registry.get_model(Principal(actor="loopml:retrain", role=Role.VIEWER, project=None), model)
        except NotFound:
            return False
        return True

    def list_policies(self, principal: Principal) -> list[RetrainPolicy]:
        with self.store.read() as unit:
            return [p for p in unit.retrain.policies(principal.project) if principal.can_see(p.project)]

    def get_policy(self, principal: Principal, name: str) -> RetrainPolicy:
        with self.store.read() as unit:
            return self._visible(principal, unit.retrain.policy(_check_name(name)))

    def delete_policy(self, principal: Principal, name: str) -> RetrainPolicy:
        """Stop retraining by `name`. A loop it has running is failed now (the champion keeps serving); a
        rollout it already started goes on under the rollout controller."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            policy = self._visible(principal, unit.retrain.policy(_check_name(name), lock=True))
            for loop in unit.retrain.loops(policy.name, limit=10):
                if loop.active:
                    unit.retrain.transition(
                        loop, "failed", {"reason": "the policy was deleted"}, error="the policy was deleted"
                    )
            unit.retrain.delete_policy(policy)
            return policy

    # -- loops -------------------------------------------------------------------------------------

    def list_loops(self, principal: Principal, policy: str | None = None, limit: int = 100) -> list[RetrainLoop]:
        """The loops (of `policy`), newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be an integer from 1 to 1000, got {limit!r}")
        with self.store.read() as unit:
            if policy is not None:
                self._visible(principal, unit.retrain.policy(_check_name(policy)))
            return [
                loop for loop in unit.retrain.loops(policy, principal.project, limit) if principal.can_see(loop.project)
            ]

    def get_loop(self, principal: Principal, loop_id: str) -> RetrainLoop:
        with self.store.read() as unit:
            return self._visible_loop(principal, unit.retrain.loop(_check_loop_id(loop_id)))

    def approve(self, principal: Principal, loop_id: str, reason: str | None = None) -> RetrainLoop:
        """Let a loop waiting for approval roll its challenger out."""
        return self._decide(principal, loop_id, "rolling_out", "approved", reason)

    def reject(self, principal: Principal, loop_id: str, reason: str | None = None) -> RetrainLoop:
        """Stop a loop waiting for approval; the champion keeps serving and the challenger stays registered."""
        return self._decide(principal, loop_id, "rejected", "rejected", reason)

    def _decide(self, principal: Principal, loop_id: str, state: str, verb: str, reason: str | None) -> RetrainLoop:
        principal.require(Role.EDITOR)
        why = _check_reason(reason)
        with self.store.write(principal.actor) as unit:
            loop = self._visible_loop(principal, unit.retrain.loop(_check_loop_id(loop_id)))
            if loop.state != "awaiting_approval":
                raise InvalidInput(
                    f"loop {loop_id} is {loop.state}, not awaiting_approval: only a loop waiting for approval can "
                    f"be {verb}"
                )
            detail = {"by": principal.actor, **({"reason": why} if why else {})}
            error = None if state == "rolling_out" else f"rejected by {principal.actor}" + (f": {why}" if why else "")
            moved = unit.retrain.transition(loop, state, detail, error=error)
            if moved is None:
                raise InvalidInput(f"loop {loop_id} changed state while it was being {verb}; read it again")
            return moved

    def _visible(self, principal: Principal, policy: RetrainPolicy) -> RetrainPolicy:
        if not principal.can_see(policy.project):
            raise RetrainPolicyNotFound(f"no retraining policy named {policy.name!r}")
        return policy

    def _visible_loop(self, principal: Principal, loop: RetrainLoop) -> RetrainLoop:
        if not principal.can_see(loop.project):
            raise RetrainLoopNotFound(f"no retraining loop {loop.id!r}")
        return loop
