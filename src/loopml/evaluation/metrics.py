"""Metrics of a task computed with numpy on aligned arrays: regression, binary and multiclass classification.

The definitions follow scikit-learn's (and so `mlflow.evaluate`'s default evaluator): `mape` divides by
max(|y|, machine epsilon), `log_loss` clips probabilities to [eps, 1 - eps], `roc_auc` is the Mann-Whitney
statistic with tied scores averaged, precision/recall/f1 of a binary task are of the positive class (0 when
undefined), and the multiclass ones are macro averages over the classes present in labels or predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "Outcomes",
    "compute",
]

METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "mse", "r2", "max_error", "mape"),
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "multiclass": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"),
}
"""The metrics each task reports (`roc_auc` and `log_loss` only when the model gives probabilities)."""

LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "max_error", "mape", "log_loss"})
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Outcomes:
    """Labels and predictions of one task, aligned row by row, in the form the metrics need.

    regression: `truth` and `predicted` are float arrays. binary: booleans (True = the positive class) and
    `score`, the positive class's probability, if known. multiclass: integer codes into `classes` and
    `score`, one probability column per class, if known.
    """

    task: str
    truth: NDArray[Any]
    predicted: NDArray[Any]
    score: NDArray[np.float64] | None = None
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.truth.shape[0])

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> Outcomes:
        return Outcomes(
            self.task,
            self.truth[rows],
            self.predicted[rows],
            None if self.score is None else self.score[rows],
            self.classes,
        )


def compute(outcomes: Outcomes) -> dict[str, float]:
    """The task's metrics of `outcomes` (NaN where a metric is undefined on these rows, e.g. r2 of one row)."""
    if outcomes.task == "regression":
        return _regression(outcomes.truth, outcomes.predicted)
    if outcomes.task == "binary":
        return _binary(outcomes.truth, outcomes.predicted, outcomes.score)
    return _multiclass(outcomes.truth, outcomes.predicted, outcomes.score, len(outcomes.classes))


def _regression(truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> dict[str, float]:
    if truth.size == 0:
        return dict.fromkeys(METRICS["regression"], float("nan"))
    error = predicted - truth
    absolute = np.abs(error)
    mse = float(np.mean(error * error))
    centred = truth - truth.mean()
    total = float(np.dot(centred, centred))
    residual = float(np.dot(error, error))
    # scikit-learn's convention for a constant target: 1 if predicted exactly, else 0
    r2 = (1.0 if residual == 0.0 else 0.0) if total == 0.0 else 1.0 - residual / total
    return {
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(absolute)),
        "mse": mse,
        "r2": r2 if truth.size > 1 else float("nan"),
        "max_error": float(np.max(absolute)),
        "mape": float(np.mean(absolute / np.maximum(np.abs(truth), _EPS))),
    }


def _safe_ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _binary(
    truth: NDArray[np.bool_], predicted: NDArray[np.bool_], score: NDArray[np.float64] | None
) -> dict[str, float]:
    n = truth.size
    if n == 0:
        return dict.fromkeys(METRICS["binary"], float("nan"))
    tp = float(np.count_nonzero(truth & predicted))
    fp = float(np.count_nonzero(~truth & predicted))
    fn = float(np.count_nonzero(truth & ~predicted))
    precision = _safe_ratio(tp, tp + fp)
    recall = _safe_ratio(tp, tp + fn)
    found = {
        "accuracy": float(np.count_nonzero(truth == predicted)) / n,
        "precision": precision,
        "recall": recall,
        "f1": _safe_ratio(2 * tp, 2 * tp + fp + fn),
    }
    if score is not None:
        found["roc_auc"] = _roc_auc(truth, score)
        clipped = np.clip(score, _EPS, 1 - _EPS)
        found["log_loss"] = float(-np.mean(np.where(truth, np.log(clipped), np.log1p(-clipped))))
    return found


def _roc_auc(truth: NDArray[np.bool_], score: NDArray[np.float64]) -> float:
    positives = int(np.count_nonzero(truth))
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _multiclass(
    truth: NDArray[np.int64], predicted: NDArray[np.int64], score: NDArray[np.float64] | None, k: int
) -> dict[str, float]:
    n = truth.size
    if n == 0:
        return dict.fromkeys(METRICS["multiclass"], float("nan"))
    confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k).astype(np.float64)
    tp = np.diag(confusion)
    actual = confusion.sum(axis=1)
    chosen = confusion.sum(axis=0)
    present = (actual + chosen) > 0
    precision = np.divide(tp, chosen, out=np.zeros(k), where=chosen > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * tp, actual + chosen, out=np.zeros(k), where=(actual + chosen) > 0)
    found = {
        "accuracy": float(tp.sum()) / n,
        "precision_macro": float(precision[present].mean()),
        "recall_macro": float(recall[present].mean()),
        "f1_macro": float(f1[present].mean()),
    }
    if score is not None:
        normalised = score / score.sum(axis=1, keepdims=True)
        chosen_probability = np.clip(normalised[np.arange(n), truth], _EPS, 1 - _EPS)
        found["log_loss"] = float(-np.mean(np.log(chosen_probability)))
    return found
