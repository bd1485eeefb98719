"""Evaluation metrics agree with scikit-learn's to 1e-9 on real data (Bike Sharing, Adult)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopml.evaluation import Outcomes, compute
from loopml.evaluation.scoring import bootstrap_comparison

DATA = Path(__file__).parents[2] / "examples" / "data"


def test_regression_metrics_match_scikit_learn() -> None:
    hours = pd.read_csv(DATA / "bike_sharing" / "hour.csv")
    x, y = hours[["temp", "hum", "hr", "season"]].to_numpy(), hours["cnt"].to_numpy(dtype=float)
    predicted = LinearRegression().fit(x[:5000], y[:5000]).predict(x)
    found = compute(Outcomes("regression", y, predicted))
    assert found["rmse"] == pytest.approx(sk.root_mean_squared_error(y, predicted), abs=1e-9)
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted), abs=1e-9)
    assert found["mse"] == pytest.approx(sk.mean_squared_error(y, predicted), abs=1e-9)
    assert found["r2"] == pytest.approx(sk.r2_score(y, predicted), abs=1e-9)
    assert found["max_error"] == pytest.approx(sk.max_error(y, predicted), abs=1e-9)
    assert found["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, predicted), abs=1e-9)


def _adult() -> tuple[np.ndarray, np.ndarray]:
    adult = pd.read_csv(DATA / "adult" / "adult_sample.csv")
    x = adult[["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]].to_numpy(dtype=float)
    return x, adult["income"].to_numpy()


def test_binary_metrics_match_scikit_learn() -> None:
    x, y = _adult()
    model = LogisticRegression(max_iter=500).fit(x[:2000], y[:2000])
    predicted, score = model.predict(x), model.predict_proba(x)[:, 1]
    found = compute(Outcomes("binary", y == 1, predicted == 1, score, ("0", "1")))
    assert found["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted), abs=1e-9)
    assert found["precision"] == pytest.approx(sk.precision_score(y, predicted), abs=1e-9)
    assert found["recall"] == pytest.approx(sk.recall_score(y, predicted), abs=1e-9)
    assert found["f1"] == pytest.approx(sk.f1_score(y, predicted), abs=1e-9)
    assert found["roc_auc"] == pytest.approx(sk.roc_auc_score(y, score), abs=1e-9)
    assert found["log_loss"] == pytest.approx(sk.log_loss(y, score), abs=1e-9)


def test_multiclass_metrics_match_scikit_learn() -> None:
    x, _ = _adult()
    y = np.digitize(x[:, 2], [35, 45])  # hours per week in three bands
    model = LogisticRegression(max_iter=1000).fit(x[:, [0, 1, 3]], y)
    predicted, probabilities = model.predict(x[:, [0, 1, 3]]), model.predict_proba(x[:, [0, 1, 3]])
    found = compute(Outcomes("multiclass", y, predicted, probabilities, ("0", "1", "2")))
    assert found["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted), abs=1e-9)
    assert found["precision_macro"] == pytest.approx(
        sk.precision_score(y, predicted, average="macro", zero_division=0), abs=1e-9
    )
    assert found["recall_macro"] == pytest.approx(sk.recall_score(y, predicted, average="macro"), abs=1e-9)
    assert found["f1_macro"] == pytest.approx(sk.f1_score(y, predicted, average="macro"), abs=1e-9)
    assert found["log_loss"] == pytest.approx(sk.log_loss(y, probabilities), abs=1e-9)


def test_the_paired_bootstrap_is_seeded_and_brackets_a_real_difference() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(100, 20, 2000)
    better = Outcomes("regression", truth, truth + rng.normal(0, 5, 2000))
    worse = Outcomes("regression", truth, truth + rng.normal(0, 10, 2000))
    first = bootstrap_comparison(better, worse, resamples=100, seed=3)
    assert first == bootstrap_comparison(better, worse, resamples=100, seed=3)
    rmse = next(c for c in first if c.metric == "rmse")
    assert rmse.low <= rmse.difference <= rmse.high < 0
    same = next(c for c in bootstrap_comparison(better, better, resamples=50) if c.metric == "rmse")
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
