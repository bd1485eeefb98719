"""Real drift through the whole monitoring path: a model of Bike Sharing 2011 H1 (the reference profile),
monitored on the request log of July to December 2011 with labels arriving two days late."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import build_profile
from loopml.monitoring import read_backfill_labels, read_backfill_requests

from .support import ADMIN, EDITOR, VIEWER, World, record

HOUR_CSV = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["temp", "atemp", "hum", "windspeed", "hr", "workingday"]
DAY = 86_400_000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(f"sqlite:///{tmp_path / 'loopml.db'}", tmp_path)
    yield made
    made.close()


def test_seasonal_drift_and_a_metric_drop_once_labels_arrive(world: World) -> None:
    hours = pd.read_csv(HOUR_CSV, parse_dates=["dteday"])
    hours["time_ms"] = hours["dteday"].to_numpy().astype("datetime64[ms]").astype(np.int64) + hours["hr"] * 3_600_000
    first_half = hours[(hours.yr == 0) & (hours.mnth <= 6)]
    later = hours[(hours.yr == 0) & (hours.mnth >= 7)]
    design = np.c_[np.ones(len(first_half)), first_half[FEATURES].to_numpy(dtype=float)]
    weights, *_ = np.linalg.lstsq(design, first_half["cnt"].to_numpy(dtype=float), rcond=None)
    fitted = design @ weights
    rmse = float(np.sqrt(np.mean((fitted - first_half["cnt"]) ** 2)))
    world.register("bike", {"val_rmse": rmse})
    reference = first_half[FEATURES].assign(prediction=fitted)
    world.monitoring.set_reference_profile(EDITOR, "bike", 1, build_profile(reference, prediction_column="prediction"))

    predicted = np.c_[np.ones(len(later)), later[FEATURES].to_numpy(dtype=float)] @ weights
    world.log(
        [
            record(
                f"h{row.instant}",
                int(row.time_ms),
                {name: [getattr(row, name)] for name in FEATURES},
                [float(value)],
                deployment="bike-demand",
                model="bike",
            )
            for row, value in zip(later.itertuples(), predicted, strict=True)
        ]
    )
    world.monitoring.create_monitor(EDITOR, "bike", "bike-demand", window="30d", label_delay="2d", consecutive=2)
    world.monitoring.record_feedback(
        EDITOR,
        [
            {"request_id": f"h{row.instant}", "label": int(row.cnt), "time_ms": int(row.time_ms) + 2 * DAY}
            for row in later.itertuples()
        ],
    )
    end = int(later["time_ms"].max()) + 40 * DAY
    world.monitoring.run_monitor(ADMIN, "bike", now=end)
    windows = [w for w in world.monitoring.windows(VIEWER, "bike") if w.rows >= 24 * 20]  # whole months only
    assert len(windows) >= 4

    def drifted(window: object, column: str) -> bool:
        return any(c["column"] == column and c["drifted"] for c in window.drift["columns"])  # type: ignore[attr-defined]

    summer = [w for w in windows if 7 <= pd.Timestamp(w.start_time, unit="ms").month <= 9]
    assert summer and all(drifted(w, "temp") and drifted(w, "atemp") for w in summer)
    assert all(not drifted(w, "hr") for w in windows)  # the hour of day does not change with the season
    realised = [w.performance["metrics"]["rmse"] for w in windows if w.performance]
    assert realised and max(realised) > rmse * 1.05
    assert any(w.breaches["metric_drop"] for w in windows)
    assert {a.kind for a in world.monitoring.alerts(VIEWER, "bike")} >= {"drift", "metric_drop"}


def test_a_backtest_from_files_by_event_time_gives_the_served_windows(world: World, tmp_path: Path) -> None:
    hours = pd.read_csv(HOUR_CSV, parse_dates=["dteday"])
    hours["when"] = hours["dteday"] + pd.to_timedelta(hours["hr"], unit="h")
    first_half = hours[(hours.yr == 0) & (hours.mnth <= 6)]
    later = hours[(hours.yr == 0) & (hours.mnth >= 7)]
    design = np.c_[np.ones(len(first_half)), first_half[FEATURES].to_numpy(dtype=float)]
    weights, *_ = np.linalg.lstsq(design, first_half["cnt"].to_numpy(dtype=float), rcond=None)
    world.register("bike", {"val_rmse": float(np.sqrt(np.mean((design @ weights - first_half["cnt"]) ** 2)))})
    reference = first_half[FEATURES].assign(prediction=design @ weights)
    world.monitoring.set_reference_profile(EDITOR, "bike", 1, build_profile(reference, prediction_column="prediction"))
    predicted = np.c_[np.ones(len(later)), later[FEATURES].to_numpy(dtype=float)] @ weights
    # served: the requests arrive a year later, each carrying the hour it is about
    served_at = int(pd.Timestamp("2013-01-01", tz="UTC").timestamp() * 1000)
    world.log(
        [
            record(
                f"h{row.instant}",
                served_at + i,
                {"when": [row.when.isoformat()], **{name: [getattr(row, name)] for name in FEATURES}},
                [float(value)],
                deployment="bike-demand",
                model="bike",
            )
            for i, (row, value) in enumerate(zip(later.itertuples(), predicted, strict=True))
        ]
    )
    files = later[["instant", "when", *FEATURES]].assign(
        request_id="h" + later["instant"].astype(str), prediction=predicted
    )
    files.drop(columns="instant").to_parquet(tmp_path / "requests.parquet")
    later.assign(request_id="h" + later["instant"].astype(str), label=later["cnt"])[["request_id", "label"]].to_csv(
        tmp_path / "labels.csv", index=False
    )
    world.monitoring.record_feedback(EDITOR, read_backfill_labels(tmp_path / "labels.csv"))
    settings = {"window": "30d", "consecutive": 2, "model": "bike", "version": 1, "options": {"time_field": "when"}}
    world.monitoring.create_monitor(EDITOR, "served", "bike-demand", **settings)  # type: ignore[arg-type]
    world.monitoring.create_monitor(EDITOR, "backtest", "bike-backtest", **settings)  # type: ignore[arg-type]
    now = served_at + DAY
    world.monitoring.run_monitor(ADMIN, "served", now=now)
    requests = read_backfill_requests(tmp_path / "requests.parquet", time_column="when")
    world.monitoring.backfill(ADMIN, "backtest", requests, now=now)

    def summary(name: str) -> list[tuple[object, ...]]:
        # all but the label delay, which counts from when a request was served: the files say only when it happened
        return [
            (
                w.start_time,
                w.rows,
                w.labelled_rows,
                w.breaches,
                w.drift,
                {k: v for k, v in (w.performance or {}).items() if k != "label_delay_seconds"},
            )
            for w in world.monitoring.windows(VIEWER, name)
        ]

    served = summary("served")
    assert len(served) >= 6 and summary("backtest") == served
    july = pd.Timestamp(served[1][0], unit="ms")  # windows follow the hours the requests are about
    assert july.year == 2011 and 6 <= july.month <= 8
    assert any("temp" in drift["drifted_columns"] for *_, drift, _ in served)  # type: ignore[index]
