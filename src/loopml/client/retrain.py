"""Retraining policies and their loops (`client.retrain`, `lm.retrain`); `loopml retrain ...` mirrors these."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.api import retrain as ops
from loopml.domain.retrain import RetrainLoop, RetrainPolicy

if TYPE_CHECKING:
    from loopml.client.client import Client


def _absolute(pipeline: str) -> str:
    """A `path.py:function` that exists here is sent with an absolute path (the server reads it)."""
    where, _, function = pipeline.rpartition(":")
    if where.endswith(".py") and Path(where).is_file():
        return f"{Path(where).resolve()}:{function}"
    return pipeline


def _gate_text(gate: str | Path | None) -> str | None:
    """A gate policy given as a path is read here; YAML text is sent as it is."""
    if gate is None:
        return None
    if isinstance(gate, Path) or ("\n" not in gate and gate.endswith((".yaml", ".yml"))):
        return Path(gate).read_text(encoding="utf-8")
    return gate


class Retrain:
    """Policies that retrain a registered model when its monitor breaches, on a schedule or on new data, and
    the loops they run inside `loopml server` (see docs/retraining.md)."""

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(
        self,
        name: str,
        *,
        monitor: str,
        pipeline: str,
        on: Sequence[str | Mapping[str, Any]],
        model: str | None = None,
        gate: str | Path | None = None,
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
        """Retrain model `model` (default `name`) with `pipeline` when a trigger of `on` fires (`drift:3`,
        `error-rate:2`, `metric-drop:10%`, `schedule:0 3 * * 1`, `dataset:NAME`); gate with `gate` (a YAML file or
        text), roll out with `rollout`, then move `champion`. At most `max_loops` per `period`, none within
        `cooldown` of the last one; `approval="manual"` waits for `approve`. With metric checks in the gate,
        `label` names the label column of the fresh rows the pipeline returns as an `lm.Dataset`."""
        return self._backend.call(
            ops.CREATE_RETRAIN_POLICY,
            name=name,
            monitor=monitor,
            pipeline=_absolute(pipeline),
            triggers=list(on),
            model=model,
            gate=_gate_text(gate),
            rollout=rollout,
            canary_steps=None if canary_steps is None else list(canary_steps),
            analysis_seconds=analysis_seconds,
            cooldown=str(cooldown),
            max_loops=max_loops,
            period=str(period),
            approval=approval,
            params=params,
            label=label,
        )

    def list(self) -> builtins.list[RetrainPolicy]:
        return self._backend.call(ops.LIST_RETRAIN_POLICIES)

    def get(self, name: str) -> RetrainPolicy:
        return self._backend.call(ops.GET_RETRAIN_POLICY, name=name)

    def delete(self, name: str) -> RetrainPolicy:
        """Stop retraining by policy `name` (a loop it has running is failed; the champion keeps serving)."""
        return self._backend.call(ops.DELETE_RETRAIN_POLICY, name=name)

    def runs(self, policy: str | None = None, limit: int = 100) -> builtins.list[RetrainLoop]:
        """The loops (of `policy`), newest first, each with its timeline (`loop.events`)."""
        return self._backend.call(ops.LIST_RETRAIN_LOOPS, policy=policy, limit=limit)

    def get_loop(self, loop_id: str) -> RetrainLoop:
        return self._backend.call(ops.GET_RETRAIN_LOOP, loop_id=loop_id)

    def approve(self, loop_id: str, reason: str | None = None) -> RetrainLoop:
        """Let a loop waiting for approval roll its challenger out."""
        return self._backend.call(ops.APPROVE_RETRAIN_LOOP, loop_id=loop_id, reason=reason)

    def reject(self, loop_id: str, reason: str | None = None) -> RetrainLoop:
        """End a loop waiting for approval; the champion keeps serving."""
        return self._backend.call(ops.REJECT_RETRAIN_LOOP, loop_id=loop_id, reason=reason)
