"""The realised quality of two versions over one window, once labels joined by request id have arrived.

A classifier (predictions that are class labels or class probabilities) is compared on accuracy, a regressor
(numbers) on the mean absolute error. The candidate fails when it is worse than the stable version by more
than the threshold, beyond sampling noise: the one-sided 95% confidence bound of the difference (difference
minus 1.645 standard errors) must pass the threshold, so two equally good versions on a few hundred labels
are not told apart by chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from loopml.deploy.predictions import predicted_class, prediction_kind

__all__ = ["Labelled", "QualityCheck", "compare_quality"]

Labelled = tuple[object, object]
"""(prediction, label) of one answered record whose label arrived."""

Z_ONE_SIDED_95 = 1.6449
Verdict = Literal["pass", "fail", "waiting", "undecided"]


@dataclass(frozen=True)
class QualityCheck:
    """`waiting`: fewer labels than the minimum on a side (not run); `undecided`: labels that do not fit."""

    verdict: Verdict
    numbers: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _task(pairs: Sequence[Labelled]) -> str | None:
    kinds = {prediction_kind(p) for p, _ in pairs}
    if kinds <= {"label", "probabilities"}:
        return "classification"
    if kinds == {"number"}:
        return "regression"
    return None


def _class_order(pairs: Sequence[Labelled]) -> list[str] | None:
    """The class each position of a probability list stands for: class indices when the labels are integers
    below the list's length, else the labels sorted (scikit-learn's `classes_` order) when as many distinct
    labels as probabilities have arrived; None when neither says which position is which class."""
    widths = {len(p) for p, _ in pairs if isinstance(p, list | tuple) and prediction_kind(p) == "probabilities"}
    if not widths:
        return []
    if len(widths) > 1:
        return None
    width = widths.pop()
    labels = {_text(y) for _, y in pairs}
    if all(label.isdigit() and int(label) < width for label in labels):
        return [str(i) for i in range(width)]
    return sorted(labels) if len(labels) == width else None


def _accuracy(pairs: Sequence[Labelled], order: list[str]) -> tuple[float, float]:
    def named(prediction: object) -> str:
        found = predicted_class(prediction)
        if order and isinstance(found, int) and isinstance(prediction, list | tuple):
            return order[found]  # a probability list's position
        return _text(found)

    hits = np.asarray([named(p) == _text(y) for p, y in pairs], dtype=np.float64)
    mean = float(hits.mean())
    return mean, mean * (1 - mean) / len(hits)


def _absolute_errors(pairs: Sequence[Labelled]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    errors = []
    for prediction, label in pairs:
        if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label):
            return None
        if not isinstance(prediction, int | float) or isinstance(prediction, bool):
            return None  # a multi-output regressor: one label cannot be compared with several numbers
        errors.append(abs(float(prediction) - float(label)))
    return np.asarray(errors, dtype=np.float64)


def compare_quality(
    stable: Sequence[Labelled],
    candidate: Sequence[Labelled],
    *,
    min_labels: int,
    max_accuracy_drop: float,
    max_error_increase: float,
) -> QualityCheck:
    """Accuracy (classifiers) or mean absolute error (regressors) of both sides; see the module docstring."""
    counts = {"stable_labels": len(stable), "candidate_labels": len(candidate)}
    if min(len(stable), len(candidate)) < min_labels:
        note = f"{len(stable)} stable and {len(candidate)} candidate labels (at least {min_labels} each needed)"
        return QualityCheck("waiting", counts, note)
    task = _task([*stable, *candidate])
    if task is None:
        return QualityCheck("undecided", counts, "predictions of mixed kinds cannot be scored against labels")
    if task == "classification":
        order = _class_order([*stable, *candidate])
        if order is None:
            note = "class probabilities name classes by position, and the labels do not say which is which"
            return QualityCheck("undecided", counts, note)
        ours, our_variance = _accuracy(stable, order)
        theirs, their_variance = _accuracy(candidate, order)
        worse = ours - theirs
        limit = max_accuracy_drop
        metric = "accuracy"
    else:
        our_errors, their_errors = _absolute_errors(stable), _absolute_errors(candidate)
        if our_errors is None or their_errors is None:
            return QualityCheck("undecided", counts, "a regressor's labels must be numbers, one per prediction")
        ours, theirs = float(our_errors.mean()), float(their_errors.mean())
        our_variance = float(our_errors.var(ddof=1)) / len(our_errors) if len(our_errors) > 1 else 0.0
        their_variance = float(their_errors.var(ddof=1)) / len(their_errors) if len(their_errors) > 1 else 0.0
        worse = theirs - ours
        limit = max_error_increase * ours
        metric = "mae"
    bound = worse - Z_ONE_SIDED_95 * math.sqrt(our_variance + their_variance)
    numbers = {
        **counts,
        "task": task,
        "metric": metric,
        "stable": round(ours, 4),
        "candidate": round(theirs, 4),
        "worse_by": round(worse, 4),
        "worse_by_lower_bound": round(bound, 4),
        "allowed": round(limit, 4),
    }
    return QualityCheck("fail" if bound > limit else "pass", numbers)
