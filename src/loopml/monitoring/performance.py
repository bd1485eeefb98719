"""Realised performance of a window once its labels arrived, in numpy (checked against scikit-learn in tests).

Classification: accuracy, precision, recall, F1 (binary: of the positive class; more classes: macro average),
ROC AUC (binary: of the positive class; more classes: macro one-vs-rest) and log loss, when the model logged
class probabilities. Regression: RMSE, MAE, MAPE
(as scikit-learn: |error| / max(|truth|, eps)) and R2.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from loopml.errors import InvalidInput

__all__ = [
    "HIGHER_IS_BETTER",
    "classification_metrics",
    "infer_task",
    "metric_drops",
    "regression_metrics",
]

HIGHER_IS_BETTER = {"accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True, "r2": True}
LOWER_IS_BETTER = ("log_loss", "rmse", "mae", "mape")
_EPS = float(np.finfo(np.float64).eps)


def infer_task(labels: Sequence[Any], predictions: Sequence[Any]) -> str:
    """ "classification" when every label and prediction is a bool, a string or an integral number."""

    def discrete(value: Any) -> bool:
        if isinstance(value, bool | str):
            return True
        return isinstance(value, int | float) and math.isfinite(value) and float(value).is_integer()

    every = all(discrete(v) for v in labels) and all(discrete(v) for v in predictions)
    return "classification" if every else "regression"


def classification_metrics(
    labels: Sequence[Any],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float] | None] | None = None,
    *,
    classes: Sequence[Any] | None = None,
    positive: Any = None,
) -> dict[str, float]:
    """Metrics of predicted classes against labels.

    `probabilities` (one row of class probabilities per prediction, or None for a row answered without them)
    adds log loss and ROC AUC over the rows that have them: binary, the AUC of the positive class's column;
    more classes, the macro average of one-vs-rest AUCs (scikit-learn's `multi_class="ovr"`) over the classes
    both present and absent in the window. `classes` is the order of those columns (what the model logged);
    without it, the labels' sorted order (integers 0..k-1 by value). `positive` is the positive class of binary
    precision, recall, F1 and ROC AUC; by default "1", "True", "true" or "yes" when a class, else the second of
    the two classes in sorted order (scikit-learn's `pos_label=1` for {0, 1}, and its `classes_` order).
    """
    if len(labels) != len(predictions) or not labels:
        raise InvalidInput("classification metrics need as many predictions as labels, and at least one")
    y = np.asarray([_text(v) for v in labels])
    p = np.asarray([_text(v) for v in predictions])
    observed = sorted(set(y.tolist()) | set(p.tolist()))
    known = [_text(c) for c in classes] if classes else None
    if positive is not None and known is not None and _text(positive) not in known:
        raise InvalidInput(f"the positive class {positive!r} is not one of the model's classes {known}")
    two = known if known is not None and len(known) == 2 and set(observed) <= set(known) else None
    if two is not None and classes is not None:  # sorted by value, as scikit-learn orders `classes_`
        try:
            two = [_text(c) for c in sorted(classes)]
        except TypeError:  # labels that do not compare: by their text
            two = sorted(two)
    chosen = _text(positive) if positive is not None else _positive(two or observed)
    result = {"accuracy": float(np.mean(y == p))}
    if len(observed) <= 2 or two is not None:
        precision, recall, f1 = _prf(y == chosen, p == chosen)
    else:
        scores = np.asarray([_prf(y == c, p == c) for c in observed])
        precision, recall, f1 = (float(v) for v in scores.mean(axis=0))
    result.update(precision=precision, recall=recall, f1=f1)
    if probabilities is not None and len(probabilities) == len(labels):
        result.update(_probability_metrics(y, probabilities, known, chosen))
    return result


def _probability_metrics(
    y: NDArray[Any], probabilities: Sequence[Sequence[float] | None], known: list[str] | None, positive: str
) -> dict[str, float]:
    width = next((len(row) for row in probabilities if row is not None), 0)
    keep = [i for i, row in enumerate(probabilities) if row is not None and len(row) == width]
    if width < 2 or not keep:
        return {}
    matrix = np.asarray([probabilities[i] for i in keep], dtype=np.float64)
    truth = y[keep].tolist()
    order = known if known is not None and len(known) == width else _class_order(sorted(set(truth)), width)
    index = {c: i for i, c in enumerate(order)}
    if not all(c in index for c in truth):
        return {}
    rows = np.asarray([index[c] for c in truth])
    found: dict[str, float] = {}
    clipped = np.clip(matrix / matrix.sum(axis=1, keepdims=True), _EPS, 1 - _EPS)
    found["log_loss"] = float(-np.mean(np.log(clipped[np.arange(len(rows)), rows])))
    if width == 2:
        column = index.get(positive, 1)
        if len(set(rows.tolist())) == 2:
            found["roc_auc"] = roc_auc(rows == column, matrix[:, column])
        return found
    areas = [roc_auc(rows == k, matrix[:, k]) for k in range(width) if 0 < int(np.sum(rows == k)) < len(rows)]
    if areas:
        found["roc_auc"] = float(np.mean(areas))
    return found


def _class_order(label_classes: list[str], width: int) -> list[str]:
    # Probabilities come in the model's class order (sorted, as scikit-learn does); integer classes sort by value.
    with contextlib.suppress(ValueError):  # labels that are not integers keep their own order
        numbers = sorted(int(c) for c in label_classes)
        if numbers and numbers[0] >= 0 and numbers[-1] < width:
            return [str(i) for i in range(width)]
    return label_classes


def roc_auc(truth: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """Area under the ROC curve: the Mann-Whitney U of the positives' score ranks (ties count half)."""
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def regression_metrics(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    if y.shape != p.shape or not len(y):
        raise InvalidInput("regression metrics need as many predictions as labels, and at least one")
    error = p - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(y), _EPS))),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else math.nan,
    }


def metric_drops(realised: Mapping[str, float], reference: Mapping[str, float], max_drop: float) -> dict[str, float]:
    """The metrics that are more than `max_drop` (relative) worse than their reference, with the relative change
    (negative = worse for higher-is-better metrics; positive = worse for errors)."""
    drops: dict[str, float] = {}
    for name, value in realised.items():
        ref = reference.get(name)
        if ref is None or not math.isfinite(value) or not math.isfinite(ref) or ref == 0:
            continue
        change = (value - ref) / abs(ref)
        worse = -change if HIGHER_IS_BETTER.get(name, False) else change
        if worse > max_drop:
            drops[name] = change
    return drops


def _prf(truth: NDArray[np.bool_], predicted: NDArray[np.bool_]) -> tuple[float, float, float]:
    hits = float(np.sum(truth & predicted))
    precision = hits / float(predicted.sum()) if predicted.any() else 0.0
    recall = hits / float(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _positive(classes: list[str]) -> str:
    for candidate in ("1", "True", "true", "yes"):
        if candidate in classes:
            return candidate
    return classes[-1]


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
