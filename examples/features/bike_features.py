"""The Bike Sharing example with a feature store: the weather by hour is a feature view, joined point-in-time
correctly for training and read from the online store for scoring.

    .venv/bin/python examples/features/bike_features.py

1. Writes the hourly weather of hour.csv to a Parquet file (the "weather feed"), applies features.py.
2. Builds a training set for January-September 2011: each hour's rentals (the labels, with the calendar
   columns) joined with the weather known at that hour; logged to the run with lineage to the view version.
3. Trains, registers the model, materializes the weather into the online store and scores the next hours
   with features read online, as a serving replica would.

Runs on the embedded store (./loopml-data, or LOOPML_HOME).
Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import root_mean_squared_error

import loopml as lm

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "bike_sharing" / "hour.csv"
CALENDAR = ["hr", "workingday", "season"]
SERVICE = "bike_demand"
MODEL = "bike-demand-features"


def hours() -> pd.DataFrame:
    frame = pd.read_csv(DATA, parse_dates=["dteday"])
    frame["ts"] = (frame["dteday"] + pd.to_timedelta(frame["hr"], unit="h")).dt.tz_localize("UTC")
    frame["city"] = "washington_dc"
    return frame


def main() -> None:
    work = Path(os.environ.get("LOOPML_HOME", "loopml-data")).resolve() / "bike-features"
    work.mkdir(parents=True, exist_ok=True)
    data = hours()
    weather = data[["city", "ts", "temp", "atemp", "hum", "windspeed", "weathersit"]].assign(
        created_at=data["ts"] + pd.Timedelta(hours=1)
    )
    weather.to_parquet(work / "weather_hourly.parquet")
    shutil.copy(HERE / "features.py", work / "features.py")

    plan = lm.features.apply(work / "features.py")
    print("applied:", ", ".join(f"{c.kind} {c.name} v{c.version} ({c.action})" for c in plan.changes))

    # A label is known at the end of its hour; the weather it may use is the latest reading at or before it.
    labels = data[["city", "ts", "cnt", *CALENDAR]].rename(columns={"ts": "event_timestamp"})
    labels["event_timestamp"] += pd.Timedelta(minutes=59)
    train_labels = labels[labels["event_timestamp"] < "2011-10-01"]
    with lm.start_run(experiment="bike-demand-features", name="hgb-weather-features") as run:
        train = lm.features.training_set(train_labels, SERVICE, run=run, name="hour-2011-jan-sep+weather")
        columns = [c for c in train.columns if c not in ("city", "event_timestamp", "cnt")]
        model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(train[columns], train["cnt"])
        valid_labels = labels[(labels["event_timestamp"] >= "2011-10-01") & (labels["event_timestamp"] < "2012-01-01")]
        valid = lm.features.training_set(valid_labels, SERVICE)
        rmse = float(root_mean_squared_error(valid["cnt"], model.predict(valid[columns])))
        run.log_metric("rmse", rmse)
        run.log_model(model, name=MODEL, input_example=train[columns][:5])
    [dataset] = [d for d in lm.get_client().runs.datasets(run.id) if d.role == "training"]
    lineage = lm.features.lineage(dataset.digest)
    print(f"training set: {dataset.rows} hours, {dataset.digest[:12]}; joined from {lineage.views}")
    print(f"validation rmse (Oct-Dec 2011): {rmse:.1f}")
    version = lm.models.register(f"runs:/{run.id}/models/{MODEL}", MODEL)
    print(f"registered {version.uri}; its training dataset names the feature view versions above")

    # Serving: the weather feed is materialized up to "now" and each request reads it online.
    now = pd.Timestamp("2012-06-01 08:00", tz="UTC")
    job = lm.features.materialize("weather_hourly", end=now)
    print(f"materialized weather_hourly up to {now}: {job.rows} entity written")
    online = lm.features.online(SERVICE, {"city": ["washington_dc"]})
    request = {"hr": 8, "workingday": 1, "season": 2, **{k: v[0] for k, v in online.values.items() if k != "city"}}
    prediction = model.predict(pd.DataFrame([request])[columns])[0]
    print(f"online features (the 07:00 reading, the latest before {now:%H:%M}): {request}")
    actual = data[(data["ts"] == now)]["cnt"].iloc[0]
    print(f"predicted rentals at {now:%Y-%m-%d %H:%M}: {prediction:.0f} (actual {actual}; 2012 outgrew 2011)")


if __name__ == "__main__":
    main()
