"""The demo's retraining pipeline: what `loopml server` runs when the retraining policy of loop.py fires.

    loopml retrain create bike-demand --monitor bike-demand \\
        --pipeline examples/quickstart/retrain_pipeline.py:retrain --on metric-drop:10%x2 ...

It trains on the labelled hours of the last six months in the warehouse (the directory loop.py fills with
each day's hours once their rentals are known), holds the newest labelled week out, and the new
model is registered by the loop as the challenger; the demo's gate then scores it and the champion on that
same held-out week before the loop may roll it out.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

import loopml as lm

FEATURES = [
    "season",
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
MODEL = "bike-demand"
RECENT_MONTHS = 6
HELD_OUT_DAYS = 7


def labelled_hours(warehouse: str) -> pd.DataFrame:
    """Every labelled hour in the warehouse (one CSV per day, written whole by the demo)."""
    files = sorted(Path(warehouse).glob("*.csv"))
    if not files:
        raise ValueError(f"the warehouse {warehouse} holds no labelled hours")
    return pd.concat([pd.read_csv(f, parse_dates=["dteday"]) for f in files], ignore_index=True)


@lm.step(cache=False)
def train(warehouse: str, trigger: dict[str, Any] | None = None) -> lm.Model:
    """Fit on the recent labelled hours before the newest week (`trigger`: why the loop runs, from the server)."""
    print(f"retraining: {(trigger or {}).get('reason', 'run by hand')}")  # kept in the step's captured output
    hours = labelled_hours(warehouse)
    newest = hours["dteday"].max()
    held_out_from = newest - pd.Timedelta(days=HELD_OUT_DAYS - 1)
    since = held_out_from - pd.DateOffset(months=RECENT_MONTHS)
    training = hours[(hours["dteday"] >= since) & (hours["dteday"] < held_out_from)]
    model = HistGradientBoostingRegressor(max_depth=8, max_iter=100, random_state=0)
    model.fit(training[FEATURES], training[TARGET])
    return lm.Model(model, name=MODEL, input_example=training[FEATURES].head(5), register=MODEL)


@lm.pipeline
def retrain(warehouse: str, trigger: dict[str, Any] | None = None) -> Any:
    return train(warehouse, trigger=trigger)
