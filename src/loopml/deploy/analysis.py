"""Rollout analysis: compare a candidate version with the stable one over one analysis window.

Three checks, as in Argo Rollouts / Flagger: error rate (share of 5xx answers), p99 latency, and the
distance between the two prediction distributions (normalised Wasserstein, from `loopml.monitoring`). Each
analysis ends `success`, `failed` (a check is over its threshold) or `inconclusive` (either side saw fewer
than `min_requests` requests: too little traffic to say). Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from loopml.domain.deployments import Outcome
from loopml.errors import InvalidInput
from loopml.monitoring import wasserstein_normalised

__all__ = ["Thresholds", "WindowStats", "analyze", "explain", "flatten_predictions"]


@dataclass(frozen=True)
class Thresholds:
    """When a check fails. Configurable per deployment (`thresholds` of `deploy`)."""

    max_error_rate_increase: float = 0.05
    """Fail when the candidate's 5xx share exceeds the stable one's by more than this (absolute)."""
    max_p99_increase_ms: float = 25.0
    """Fail when the candidate's p99 latency exceeds the stable one's by more than this many ms."""
    max_prediction_distance: float = 0.25
    """Fail when the normalised Wasserstein distance between the two prediction samples is above this."""
    min_requests: int = 50
    """Below this many requests on either side in the window, the analysis is inconclusive."""
    failure_limit: int = 1
    """Failed analyses (in one rollout) that trigger the automatic rollback."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> Thresholds:
        """Thresholds with `values` over the defaults; `InvalidInput` names an unknown key or a bad value."""
        if not values:
            return cls()
        known = {f.name: f for f in fields(cls)}
        checked: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InvalidInput(f"unknown threshold {key!r}; known: {', '.join(sorted(known))}")
            integer = known[key].type == "int"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (integer and not isinstance(value, int))
            ):
                kind = "an integer" if integer else "a number"
                raise InvalidInput(f"threshold {key} must be {kind}, got {value!r}")
            if not math.isfinite(value) or value < 0 or (integer and value < 1):
                raise InvalidInput(f"threshold {key} must be {'at least 1' if integer else 'finite and >= 0'}")
            checked[key] = value
        return cls(**checked)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowStats:
    """What one version answered in an analysis window."""

    requests: int
    errors: int
    """Answers with a 5xx status."""
    latencies_ms: Sequence[float]
    predictions: Sequence[float]
    """Numeric predictions of the successful answers (flattened); empty when the outputs are not numbers."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float | None:
        if not len(self.latencies_ms):
            return None
        return float(np.percentile(np.asarray(self.latencies_ms, dtype=np.float64), 99))

    @classmethod
    def empty(cls) -> WindowStats:
        return cls(0, 0, (), ())


def flatten_predictions(outputs: Iterable[object]) -> list[float]:
    """The numbers in `outputs` (nested lists flattened; booleans, strings and objects left out)."""
    found: list[float] = []
    stack = list(outputs)[::-1]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item):
            found.append(float(item))
    return found


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def analyze(stable: WindowStats, candidate: WindowStats, thresholds: Thresholds) -> tuple[Outcome, dict[str, Any]]:
    """The outcome of one analysis and the numbers behind it (JSON-ready: what the audit log records)."""
    numbers: dict[str, Any] = {
        "stable_requests": stable.requests,
        "candidate_requests": candidate.requests,
        "stable_error_rate": _round(stable.error_rate),
        "candidate_error_rate": _round(candidate.error_rate),
        "stable_p99_ms": _round(stable.p99_ms, 3),
        "candidate_p99_ms": _round(candidate.p99_ms, 3),
        "thresholds": thresholds.to_json(),
    }
    if min(stable.requests, candidate.requests) < thresholds.min_requests:
        numbers["failed_checks"] = []
        return "inconclusive", numbers
    failed: list[str] = []
    error_increase = candidate.error_rate - stable.error_rate
    numbers["error_rate_increase"] = _round(error_increase)
    if error_increase > thresholds.max_error_rate_increase:
        failed.append("error_rate")
    if stable.p99_ms is not None and candidate.p99_ms is not None:
        p99_increase = candidate.p99_ms - stable.p99_ms
        numbers["p99_increase_ms"] = _round(p99_increase, 3)
        numbers["p99_ratio"] = _round(candidate.p99_ms / stable.p99_ms) if stable.p99_ms > 0 else None
        if p99_increase > thresholds.max_p99_increase_ms:
            failed.append("p99_latency")
    distance: float | None = None
    if len(stable.predictions) and len(candidate.predictions):
        distance = wasserstein_normalised(stable.predictions, candidate.predictions)
        if math.isinf(distance):  # the stable predictions are constant: scale by the pooled spread instead
            pooled = float(np.std(np.concatenate([np.asarray(stable.predictions), np.asarray(candidate.predictions)])))
            distance = float(np.mean(candidate.predictions) - np.mean(stable.predictions)) / pooled
            distance = abs(distance)
        if distance > thresholds.max_prediction_distance:
            failed.append("prediction_distance")
    numbers["prediction_distance"] = _round(distance)
    numbers["failed_checks"] = failed
    if failed:
        return "failed", numbers
    return "success", numbers


def explain(outcome: Outcome, numbers: Mapping[str, Any]) -> str:
    """One sentence saying why an analysis ended as it did, with the numbers that decided it."""
    limits = numbers["thresholds"]
    if outcome == "inconclusive":
        return (
            f"too little traffic to decide: stable {numbers['stable_requests']}, candidate "
            f"{numbers['candidate_requests']} requests in the window (at least {limits['min_requests']} each needed)"
        )
    parts = []
    for check in numbers["failed_checks"]:
        if check == "error_rate":
            parts.append(
                f"error rate {numbers['candidate_error_rate']:.2%} vs stable {numbers['stable_error_rate']:.2%} "
                f"(+{numbers['error_rate_increase']:.2%} > {limits['max_error_rate_increase']:.2%} allowed)"
            )
        elif check == "p99_latency":
            parts.append(
                f"p99 {numbers['candidate_p99_ms']:.1f} ms vs stable {numbers['stable_p99_ms']:.1f} ms "
                f"(+{numbers['p99_increase_ms']:.1f} ms > {limits['max_p99_increase_ms']} ms allowed)"
            )
        elif check == "prediction_distance":
            parts.append(
                f"prediction distance {numbers['prediction_distance']} > {limits['max_prediction_distance']} allowed"
            )
    if parts:
        return "candidate failed: " + "; ".join(parts)
    return (
        f"candidate within thresholds: error rate {numbers['candidate_error_rate']:.2%} vs "
        f"{numbers['stable_error_rate']:.2%}, p99 {numbers['candidate_p99_ms']} vs {numbers['stable_p99_ms']} ms, "
        f"prediction distance {numbers['prediction_distance']}"
    )
