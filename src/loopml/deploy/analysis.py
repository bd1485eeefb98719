"""Rollout analysis: compare a candidate version with the stable one over one analysis window.

Four checks, as in Argo Rollouts / Flagger: error rate (share of 5xx answers), p99 latency, the distance
between the two prediction distributions (by kind of prediction: see `loopml.deploy.predictions`) and, once
labels have arrived, the realised quality (see `loopml.deploy.quality`). Each analysis ends `success`,
`failed` (a check is over its threshold) or `inconclusive` (either side saw fewer than `min_requests`
requests, or a check could not be computed: never counted as a pass). Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import stats

from loopml.deploy.predictions import distance, flatten_predictions
from loopml.deploy.quality import Labelled, compare_quality
from loopml.domain.deployments import Outcome
from loopml.errors import InvalidInput

__all__ = ["Thresholds", "WindowStats", "analyze", "explain", "flatten_predictions"]

SLOW_SHARE = 0.01
"""The share of requests above its p99 a version has by definition: the latency check's null hypothesis."""
SLOW_P_VALUE = 0.001
"""The candidate fails the latency check when its share of slow requests is this unlikely under the null."""


@dataclass(frozen=True)
class Thresholds:
    """When a check fails. Configurable per deployment (`thresholds` of `deploy`)."""

    max_error_rate_increase: float = 0.05
    """Fail when the candidate's 5xx share exceeds the stable one's by more than this (absolute)."""
    max_p99_increase_ms: float = 25.0
    """The absolute latency margin: slow means above the stable p99 plus the larger of the two margins."""
    max_p99_increase_ratio: float = 0.5
    """The relative latency margin, a share of the stable p99 (0.5: 50% above it)."""
    min_latency_samples: int = 100
    """Below this many latencies on either side the latency check cannot be computed (a p99 of fewer is a max)."""
    max_prediction_distance: float = 0.25
    """Fail when the distance between the two prediction samples is above this (`loopml.deploy.predictions`)."""
    min_requests: int = 50
    """Below this many requests on either side in the window, the analysis is inconclusive."""
    min_labels: int = 100
    """Labelled predictions needed on each side before the quality check runs."""
    max_accuracy_drop: float = 0.05
    """A classifier fails when its accuracy is lower than the stable one's by more than this (absolute)."""
    max_error_increase: float = 0.1
    """A regressor fails when its mean absolute error is higher by more than this share of the stable one's."""
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
    predictions: Sequence[object]
    """One prediction per answered record of the successful answers: a number, a class label or a list of
    class probabilities (see `loopml.deploy.predictions`)."""
    labelled: Sequence[Labelled] = ()
    """(prediction, label) of the answered records whose label has arrived."""

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


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _latency(
    stable: WindowStats, candidate: WindowStats, thresholds: Thresholds, numbers: dict[str, Any]
) -> bool | None:
    """True when the candidate is slower beyond both margins and beyond chance; None below the sample minimum.

    Slow means above the stable p99 plus the larger margin; by definition about 1% of the stable version's
    requests are above its p99, so the candidate fails only when its share of slow requests is more than 1%
    with a binomial p-value below 0.001. On a busy machine a few scheduling stalls among a small canary's
    requests move its p99 by tens of ms; they do not make a significant share of slow requests."""
    if stable.p99_ms is None or candidate.p99_ms is None:
        return None
    numbers["p99_increase_ms"] = _round(candidate.p99_ms - stable.p99_ms, 3)
    numbers["p99_ratio"] = _round(candidate.p99_ms / stable.p99_ms) if stable.p99_ms > 0 else None
    if min(len(stable.latencies_ms), len(candidate.latencies_ms)) < thresholds.min_latency_samples:
        return None
    margin = max(thresholds.max_p99_increase_ms, thresholds.max_p99_increase_ratio * stable.p99_ms)
    limit = stable.p99_ms + margin
    latencies = np.asarray(candidate.latencies_ms, dtype=np.float64)
    slow = int(np.count_nonzero(latencies > limit))
    p_value = float(stats.binom.sf(slow - 1, len(latencies), SLOW_SHARE)) if slow else 1.0
    numbers["latency_limit_ms"] = _round(limit, 3)
    numbers["candidate_slow_share"] = _round(slow / len(latencies))
    numbers["slow_share_p_value"] = float(f"{p_value:.3g}")
    return slow / len(latencies) > SLOW_SHARE and p_value < SLOW_P_VALUE


def analyze(stable: WindowStats, candidate: WindowStats, thresholds: Thresholds) -> tuple[Outcome, dict[str, Any]]:
    """The outcome of one analysis and the numbers behind it (JSON-ready: what the audit log records).

    `failed_checks` lists the checks over their threshold, `undecided_checks` those that could not be
    computed (with the reason in `notes`): any failure fails the analysis, else any undecided check makes it
    inconclusive. The quality check waits for `min_labels` labels on each side and decides nothing until then."""
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
    undecided: list[str] = []
    notes: dict[str, str] = {}
    error_increase = candidate.error_rate - stable.error_rate
    numbers["error_rate_increase"] = _round(error_increase)
    if error_increase > thresholds.max_error_rate_increase:
        failed.append("error_rate")

    slower = _latency(stable, candidate, thresholds, numbers)
    if slower is None:
        undecided.append("p99_latency")
        notes["p99_latency"] = (
            f"{len(stable.latencies_ms)} stable and {len(candidate.latencies_ms)} candidate latencies "
            f"(at least {thresholds.min_latency_samples} each needed)"
        )
    elif slower:
        failed.append("p99_latency")

    found = distance(stable.predictions, candidate.predictions)
    numbers["prediction_distance"] = _round(found.value)
    numbers["prediction_kind"] = found.kind
    numbers["prediction_distance_method"] = found.method
    numbers.update({f"prediction_{k}": v for k, v in found.details.items()})
    if found.value is None:
        undecided.append("prediction_distance")
        notes["prediction_distance"] = found.note or "no distance"
    elif found.value > thresholds.max_prediction_distance:
        failed.append("prediction_distance")

    quality = compare_quality(
        stable.labelled,
        candidate.labelled,
        min_labels=thresholds.min_labels,
        max_accuracy_drop=thresholds.max_accuracy_drop,
        max_error_increase=thresholds.max_error_increase,
    )
    numbers["quality"] = {"verdict": quality.verdict, **quality.numbers}
    if quality.verdict == "fail":
        failed.append("quality")
    elif quality.verdict == "undecided":
        undecided.append("quality")
        notes["quality"] = quality.note or "labels do not fit"
    elif quality.verdict == "waiting" and quality.note:
        numbers["quality"]["note"] = quality.note

    numbers["failed_checks"] = failed
    numbers["undecided_checks"] = undecided
    numbers["notes"] = notes
    if failed:
        return "failed", numbers
    if undecided:
        return "inconclusive", numbers
    return "success", numbers


def explain(outcome: Outcome, numbers: Mapping[str, Any]) -> str:
    """One sentence saying why an analysis ended as it did, with the numbers that decided it."""
    limits = numbers["thresholds"]
    undecided = numbers.get("undecided_checks", [])
    if outcome == "inconclusive" and not undecided:
        return (
            f"too little traffic to decide: stable {numbers['stable_requests']}, candidate "
            f"{numbers['candidate_requests']} requests in the window (at least {limits['min_requests']} each needed)"
        )
    if outcome == "inconclusive":
        notes = numbers.get("notes", {})
        return "cannot decide yet: " + "; ".join(f"{check}: {notes.get(check, 'not computed')}" for check in undecided)
    parts = []
    for check in numbers["failed_checks"]:
        if check == "error_rate":
            parts.append(
                f"error rate {numbers['candidate_error_rate']:.2%} vs stable {numbers['stable_error_rate']:.2%} "
                f"(+{numbers['error_rate_increase']:.2%} > {limits['max_error_rate_increase']:.2%} allowed)"
            )
        elif check == "p99_latency":
            parts.append(
                f"p99 {numbers['candidate_p99_ms']:.1f} ms vs stable {numbers['stable_p99_ms']:.1f} ms; "
                f"{numbers['candidate_slow_share']:.1%} of the candidate's requests above "
                f"{numbers['latency_limit_ms']:.1f} ms (stable p99 + max({limits['max_p99_increase_ms']} ms, "
                f"{limits['max_p99_increase_ratio']:.0%})), p = {numbers['slow_share_p_value']}"
            )
        elif check == "prediction_distance":
            parts.append(
                f"prediction distance {numbers['prediction_distance']} ({numbers['prediction_distance_method']}) "
                f"> {limits['max_prediction_distance']} allowed"
            )
        elif check == "quality":
            quality = numbers["quality"]
            parts.append(
                f"{quality['metric']} {quality['candidate']} vs stable {quality['stable']} on "
                f"{quality['candidate_labels']} and {quality['stable_labels']} labels (worse by {quality['worse_by']}, "
                f"at least {quality['worse_by_lower_bound']} with 95% confidence > {quality['allowed']} allowed)"
            )
    if parts:
        return "candidate failed: " + "; ".join(parts)
    return (
        f"candidate within thresholds: error rate {numbers['candidate_error_rate']:.2%} vs "
        f"{numbers['stable_error_rate']:.2%}, p99 {numbers['candidate_p99_ms']} vs {numbers['stable_p99_ms']} ms, "
        f"prediction distance {numbers['prediction_distance']}, quality {numbers['quality']['verdict']}"
    )
