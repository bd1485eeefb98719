"""Group fairness metrics, computed with numpy over the groups of one sensitive attribute.

Definitions (as fairlearn's, which the tests check against):

- `demographic_parity_ratio`: smallest selection rate (share predicted positive) of a group over the largest.
- `demographic_parity_difference`: largest selection rate minus the smallest.
- `equalized_odds_difference`: the larger of the between-group spreads (max - min) of the true positive rate
  and of the false positive rate.
- `group_error_ratio` (regressors): largest mean absolute error of a group over the smallest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loopml.errors import InvalidInput
from loopml.evaluation import Outcomes

__all__ = ["fairness_metrics"]


def _groups(column: pd.Series) -> list[NDArray[np.bool_]]:
    codes, _ = pd.factorize(column.astype(object).where(column.notna(), "null"), sort=True)
    counts = np.bincount(codes)
    return [codes == code for code in range(counts.size) if counts[code] > 0]


def _spread_ratio(values: NDArray[np.float64]) -> float:
    high = float(values.max())
    return float(values.min()) / high if high > 0 else 1.0


def fairness_metrics(outcomes: Outcomes, column: pd.Series) -> dict[str, float]:
    """The fairness metrics of `outcomes` across the groups of `column` (aligned with the outcomes' rows)."""
    if len(column) != len(outcomes):
        raise InvalidInput("the sensitive attribute has another number of rows than the predictions")
    groups = _groups(column)
    if outcomes.task == "regression":
        errors = np.abs(outcomes.predicted - outcomes.truth)
        mae = np.array([errors[g].mean() for g in groups])
        low = float(mae.min())
        return {"group_error_ratio": float(mae.max()) / low if low > 0 else (1.0 if mae.max() == 0 else float("inf"))}
    if outcomes.task != "binary":
        raise InvalidInput("fairness metrics of classifiers need a binary task (one positive class)")
    truth, predicted = outcomes.truth, outcomes.predicted
    selection = np.array([predicted[g].mean() for g in groups])
    tpr, fpr = [], []
    for g in groups:
        positives, negatives = truth & g, ~truth & g
        tpr.append(predicted[positives].mean() if positives.any() else 0.0)
        fpr.append(predicted[negatives].mean() if negatives.any() else 0.0)
    tprs, fprs = np.array(tpr), np.array(fpr)
    return {
        "demographic_parity_ratio": _spread_ratio(selection),
        "demographic_parity_difference": float(selection.max() - selection.min()),
        "equalized_odds_difference": float(max(tprs.max() - tprs.min(), fprs.max() - fprs.min())),
    }
