"""Retraining policies and their loops: what starts a retraining, what guards it, and the state machine one
loop walks from its trigger to a promoted (or refused) model version."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LOOP_STATES = (
    "triggered",
    "training",
    "registered",
    "evaluating",
    "gated",
    "awaiting_approval",
    "rolling_out",
    "succeeded",
    "failed",
    "rejected",
)
ACTIVE_STATES = LOOP_STATES[:7]
"""A loop in one of these is running; at most one per policy (the store enforces it)."""
FINAL_STATES = LOOP_STATES[7:]

WINDOW_TRIGGERS = ("drift", "metric_drop", "error_rate")
TRIGGER_KINDS = (*WINDOW_TRIGGERS, "schedule", "dataset")
ROLLOUTS = ("canary", "direct")
APPROVALS = ("auto", "manual")


@dataclass(frozen=True, slots=True)
class RetrainTrigger:
    """`drift`/`error_rate`: `windows` consecutive breaching windows of the policy's monitor; `metric_drop`:
    `windows` consecutive windows whose realised metric fell by at least `threshold` (relative, 0.1 = 10%)
    against the serving version's own evaluation; `schedule`: a cron expression (UTC); `dataset`: a new
    version of the named dataset."""

    kind: str
    windows: int = 1
    threshold: float | None = None
    cron: str | None = None
    dataset: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "schedule":
            return f"schedule:{self.cron}"
        if self.kind == "dataset":
            return f"dataset:{self.dataset}"
        if self.kind == "metric_drop" and self.threshold is not None:
            return f"metric-drop:{self.threshold * 100:g}%" + (f"x{self.windows}" if self.windows > 1 else "")
        return f"{self.kind.replace('_', '-')}:{self.windows}"


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    name: str
    project: str
    model: str
    """The registered model whose challenger the loop registers and whose `champion` alias it moves."""
    monitor: str
    pipeline: str
    """`module:function` or `path/to/file.py:function`."""
    triggers: tuple[RetrainTrigger, ...]
    gate: str | None
    """The gate policy's YAML text, stored with the policy (None: no gate)."""
    rollout: str
    canary_steps: tuple[int, ...]
    analysis_seconds: int
    cooldown_seconds: int
    max_loops: int
    period_seconds: int
    approval: str
    params: dict[str, Any]
    created_at: int
    created_by: str
    last_tick: int | None = None
    label: str | None = None
    """The label column of the fresh rows the pipeline returns (an `lm.Dataset`): the gate's metric checks
    score challenger and champion on them."""


@dataclass(frozen=True, slots=True)
class LoopEvent:
    """One transition of a loop: the state entered, when, and what it was about (numbers, ids, reasons)."""

    state: str
    at: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrainLoop:
    id: str
    policy: str
    project: str
    state: str
    trigger_key: str
    reason: str
    context: dict[str, Any]
    created_at: int
    updated_at: int
    pipeline_run_id: str | None = None
    version: int | None = None
    gate: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    error: str | None = None
    holder: str | None = None
    heartbeat_at: int | None = None
    events: tuple[LoopEvent, ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def trigger_to_json(trigger: RetrainTrigger) -> dict[str, Any]:
    return asdict(trigger)


def policy_to_json(policy: RetrainPolicy) -> dict[str, Any]:
    data = asdict(policy)
    data["triggers"] = [trigger_to_json(t) for t in policy.triggers]
    data["canary_steps"] = list(policy.canary_steps)
    return data


def policy_from_json(data: dict[str, Any]) -> RetrainPolicy:
    return RetrainPolicy(
        **{
            **data,
            "triggers": tuple(RetrainTrigger(**t) for t in data["triggers"]),
            "canary_steps": tuple(data["canary_steps"]),
        }
    )


def loop_to_json(loop: RetrainLoop) -> dict[str, Any]:
    data = asdict(loop)
    data["events"] = [asdict(e) for e in loop.events]
    return data


def loop_from_json(data: dict[str, Any]) -> RetrainLoop:
    return RetrainLoop(**{**data, "events": tuple(LoopEvent(**e) for e in data["events"])})
