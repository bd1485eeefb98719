"""Real drift through the whole monitoring path: a model of Bike Sharing 2011 H1 (the reference profile),
monitored on the request log of July to December 2011 with labels arriving two days late."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import build_profile

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
