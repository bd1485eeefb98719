"""Evaluations of model versions and the gate results judged from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loopml.domain.wire import decode_float, encode_float

Task = Literal["regression", "binary", "multiclass"]
TASKS: tuple[str, ...] = ("regression", "binary", "multiclass")
CheckStatus = Literal["pass", "fail", "error"]


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of the evaluated version next to the baseline's on the same rows.

    `difference` is value - baseline; (`low`, `high`) is the paired bootstrap interval of that difference
    (95%: the same resampled rows score both models)."""

    metric: str
    value: float
    baseline: float
    difference: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A model version scored on a dataset: overall metrics, per-slice metrics, and optionally a baseline
    version scored on the same rows."""

    id: str
    name: str
    version: int
    project: str
    task: str
    label: str
    dataset_digest: str
    """sha256 of the evaluation rows' content (columns, types and values), as `lm.log_dataset` computes it."""
    dataset_source: str
    rows: int
    metrics: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """column -> value of that column -> metrics of those rows (with `rows`, their count)."""
    baseline_version: int | None = None
    comparison: tuple[MetricComparison, ...] = ()
    created_at: int = 0
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One check of a gate policy: what was measured against what threshold, and the verdict."""

    name: str
    """The check as the policy wrote it (`rmse <= champion * 1.02`, `sex: demographic_parity_ratio >= 0.8`)."""
    kind: str
    """metric, champion, fairness, contract, signature, latency, package."""
    status: CheckStatus
    observed: float | None = None
    threshold: float | None = None
    detail: str = ""
    line: int = 0
    """The line of the policy file the check comes from."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """A version judged against a policy. `passed` is True only if every check passed (none failed or errored)."""

    id: str
    name: str
    version: int
    project: str
    passed: bool
    policy_digest: str
    policy: str
    """The policy's YAML text, as it was judged."""
    evaluation_id: str | None
    checks: tuple[GateCheck, ...]
    created_at: int = 0
    created_by: str = ""

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if c.status != "pass")


# -- JSON shapes (the server and the HTTP client share them) ---------------------------------------------


def _floats(values: dict[str, float]) -> dict[str, float | str]:
    return {k: encode_float(v) for k, v in values.items()}


def _unfloats(values: dict[str, object]) -> dict[str, float]:
    return {k: decode_float(v) for k, v in values.items()}


def comparison_to_json(c: MetricComparison) -> dict[str, object]:
    return {
        "metric": c.metric,
        **_floats({k: getattr(c, k) for k in ("value", "baseline", "difference", "low", "high")}),
    }


def comparison_from_json(d: dict[str, object]) -> MetricComparison:
    numbers = _unfloats({k: d[k] for k in ("value", "baseline", "difference", "low", "high")})
    return MetricComparison(metric=str(d["metric"]), **numbers)


def evaluation_to_json(e: Evaluation) -> dict[str, object]:
    return {
        "id": e.id,
        "name": e.name,
        "version": e.version,
        "project": e.project,
        "task": e.task,
        "label": e.label,
        "dataset_digest": e.dataset_digest,
        "dataset_source": e.dataset_source,
        "rows": e.rows,
        "metrics": _floats(e.metrics),
        "slices": {col: {value: _floats(m) for value, m in groups.items()} for col, groups in e.slices.items()},
        "baseline_version": e.baseline_version,
        "comparison": [comparison_to_json(c) for c in e.comparison],
        "created_at": e.created_at,
        "created_by": e.created_by,
    }


def evaluation_from_json(d: dict[str, object]) -> Evaluation:
    slices: dict[str, dict[str, dict[str, object]]] = d.get("slices") or {}  # type: ignore[assignment]
    comparison: list[dict[str, object]] = d.get("comparison") or []  # type: ignore[assignment]
    metrics: dict[str, object] = d["metrics"]  # type: ignore[assignment]
    return Evaluation(
        id=str(d["id"]),
        name=str(d["name"]),
        version=int(d["version"]),  # type: ignore[call-overload]
        project=str(d["project"]),
        task=str(d["task"]),
        label=str(d["label"]),
        dataset_digest=str(d["dataset_digest"]),
        dataset_source=str(d["dataset_source"]),
        rows=int(d["rows"]),  # type: ignore[call-overload]
        metrics=_unfloats(metrics),
        slices={col: {value: _unfloats(m) for value, m in groups.items()} for col, groups in slices.items()},
        baseline_version=None if d.get("baseline_version") is None else int(d["baseline_version"]),  # type: ignore[call-overload]
        comparison=tuple(comparison_from_json(c) for c in comparison),
        created_at=int(d.get("created_at") or 0),  # type: ignore[call-overload]
        created_by=str(d.get("created_by") or ""),
    )


def check_to_json(c: GateCheck) -> dict[str, object]:
    return {
        "name": c.name,
        "kind": c.kind,
        "status": c.status,
        "observed": None if c.observed is None else _floats({"x": c.observed})["x"],
        "threshold": None if c.threshold is None else _floats({"x": c.threshold})["x"],
        "detail": c.detail,
        "line": c.line,
    }


def check_from_json(d: dict[str, object]) -> GateCheck:
    status = str(d["status"])
    if status not in ("pass", "fail", "error"):
        raise ValueError(f"a check's status is pass, fail or error, not {status!r}")
    return GateCheck(
        name=str(d["name"]),
        kind=str(d["kind"]),
        status=status,  # type: ignore[arg-type]
        observed=None if d.get("observed") is None else decode_float(d["observed"]),
        threshold=None if d.get("threshold") is None else decode_float(d["threshold"]),
        detail=str(d.get("detail") or ""),
        line=int(d.get("line") or 0),  # type: ignore[call-overload]
    )


def gate_result_to_json(g: GateResult) -> dict[str, object]:
    return {
        "id": g.id,
        "name": g.name,
        "version": g.version,
        "project": g.project,
        "passed": g.passed,
        "policy_digest": g.policy_digest,
        "policy": g.policy,
        "evaluation_id": g.evaluation_id,
        "checks": [check_to_json(c) for c in g.checks],
        "created_at": g.created_at,
        "created_by": g.created_by,
    }


def gate_result_from_json(d: dict[str, object]) -> GateResult:
    checks: list[dict[str, object]] = d.get("checks") or []  # type: ignore[assignment]
    return GateResult(
        id=str(d["id"]),
        name=str(d["name"]),
        version=int(d["version"]),  # type: ignore[call-overload]
        project=str(d["project"]),
        passed=bool(d["passed"]),
        policy_digest=str(d["policy_digest"]),
        policy=str(d["policy"]),
        evaluation_id=None if d.get("evaluation_id") is None else str(d["evaluation_id"]),
        checks=tuple(check_from_json(c) for c in checks),
        created_at=int(d.get("created_at") or 0),  # type: ignore[call-overload]
        created_by=str(d.get("created_by") or ""),
    )
