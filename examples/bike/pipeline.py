"""Bike demand pipelines: load a window of the hourly rentals, train a gradient-boosted regressor (logged
as a loopml model package), evaluate it.

    loopml pipeline run examples/bike/pipeline.py:nightly --param start=2011-01-01 --param end=2011-07-01
    loopml pipeline run examples/bike/pipeline.py:retrain --param end=2011-07-01 --param holdout_end=2011-08-01

Data: Bike Sharing Dataset (UCI, CC BY 4.0), Fanaee-T and Gama, "Event labeling combining ensemble
detectors and background knowledge", Progress in Artificial Intelligence (2013); see examples/data/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import loopml as lm

DATA = Path(__file__).resolve().parent.parent / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season",
    "yr",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
TARGET = "cnt"


def features(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame[FEATURES].astype("float64"), frame[TARGET].astype("float64")


@lm.step(retries=2)
def load(start: str, end: str) -> lm.Dataset:
    """The hourly rentals from `start` (included) to `end` (excluded), as a dataset version."""
    frame = pd.read_csv(DATA)
    window = frame[(frame["dteday"] >= start) & (frame["dteday"] < end)].reset_index(drop=True)
    if window.empty:
        raise ValueError(f"no rentals between {start} and {end}: the data covers 2011-01-01 to 2012-12-31")
    print(f"loaded {len(window)} hours from {start} to {end}")
    return lm.Dataset(window, name="bike-hourly", source=f"{DATA.name}[{start}, {end})")


@lm.step
def train(data: lm.Dataset, max_depth: int = 6, register: str | None = None) -> lm.Model:
    """A HistGradientBoostingRegressor of the hourly count; `register` names the model to register it as."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = features(data.data)
    model = HistGradientBoostingRegressor(max_depth=max_depth, random_state=0).fit(x, y)
    return lm.Model(model, name="bike-demand", input_example=x.head(5), register=register)


@lm.step
def evaluate(model: lm.Model, data: lm.Dataset) -> dict[str, float]:
    x, y = features(data.data)
    predicted = np.asarray(model.predict(x), dtype="float64")
    errors = predicted - y.to_numpy()
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors))), "rows": float(len(y))}


@lm.pipeline(schedule="0 2 * * *")
def nightly(start: str = "2011-01-01", end: str = "2011-07-01", max_depth: int = 6) -> Any:
    """Train on a window and evaluate on the same window (a smoke check of the training recipe)."""
    data = load(start, end)
    model = train(data, max_depth=max_depth)
    return evaluate(model, data)


@lm.pipeline
def retrain(
    start: str = "2011-01-01",
    end: str = "2011-07-01",
    holdout_end: str = "2011-08-01",
    max_depth: int = 6,
    model_name: str = "bike-demand",
) -> Any:
    """Train on [start, end), register the model as `model_name`, and evaluate it on the month after."""
    history = load(start, end)
    model = train(history, max_depth=max_depth, register=model_name)
    return evaluate(model, load(end, holdout_end))


if __name__ == "__main__":
    run = retrain.run()
    print(run, run.result)
