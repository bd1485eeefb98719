"""Fairness metrics computed in numpy agree with fairlearn's (the reference, used here only) on Adult."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import mean_absolute_error

from loopml.evaluation import Outcomes
from loopml.gates import fairness_metrics

ADULT = Path(__file__).parents[2] / "examples" / "data" / "adult" / "adult_sample.csv"
FEATURES = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(ADULT)


@pytest.mark.parametrize("attribute", ["sex", "race"])
def test_classifier_fairness_matches_fairlearn(adult: pd.DataFrame, attribute: str) -> None:
    y = adult["income"].to_numpy()
    predicted = LogisticRegression(max_iter=500).fit(adult[FEATURES], y).predict(adult[FEATURES])
    found = fairness_metrics(Outcomes("binary", y == 1, predicted == 1), adult[attribute])
    groups = adult[attribute]
    assert found["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y, predicted, sensitive_features=groups), abs=1e-12
    )
    assert found["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, predicted, sensitive_features=groups), abs=1e-12
    )
    assert found["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, predicted, sensitive_features=groups), abs=1e-12
    )


def test_regressor_group_error_ratio_matches_a_fairlearn_metric_frame(adult: pd.DataFrame) -> None:
    y = adult["hours_per_week"].to_numpy(dtype=float)
    x = adult[["age", "education_num", "capital_gain"]]
    predicted = LinearRegression().fit(x, y).predict(x)
    found = fairness_metrics(Outcomes("regression", y, predicted), adult["sex"])
    frame = MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=predicted, sensitive_features=adult["sex"])
    assert found["group_error_ratio"] == pytest.approx(1 / frame.ratio(method="between_groups"), abs=1e-12)
    assert np.isfinite(found["group_error_ratio"])
