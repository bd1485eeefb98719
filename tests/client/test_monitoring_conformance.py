"""`client.monitors` and `client.feedback` behave the same on the embedded backend and over HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.artifacts import open_artifact_store
from loopml.data import build_profile
from loopml.domain import Principal, Role
from loopml.errors import InvalidInput, MonitorNotFound
from loopml.monitoring import StoreSegmentPublisher
from loopml.registry import RegistryService
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
DAY = 86_400_000
T0 = 19_700 * DAY
MANIFEST = b'{"flavor": "sklearn", "files": {}}'


def seed(tmp_path: Path) -> None:
    """A version `churn/1` and two days of traffic, written straight to the client's stores."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    try:
        tracking, registry = TrackingService(store, blobs), RegistryService(store)
        registry.create_model(ADMIN, "churn")
        run = tracking.create_run(ADMIN, tracking.get_or_create_experiment(ADMIN, "e").id)
        tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
        registry.create_version(ADMIN, "churn", run.id, "model", hashlib.sha256(MANIFEST).hexdigest(), "sklearn")
        rng = np.random.default_rng(1)
        with RequestLog(tmp_path / "log", publisher=StoreSegmentPublisher(store, blobs), flush_ms=20) as log:
            for day in range(2):
                for i, value in enumerate(rng.normal(0, 1, 60)):
                    log.append(
                        RequestRecord(
                            f"r{day}-{i}", T0 + day * DAY + i, "churn", "churn", 1, "stable",
                            {"x": [float(value)]}, [int(value > 0)], 1.0, 200, "native", None,
                        )
                    )  # fmt: skip
    finally:
        store.close()


@pytest.mark.operations(
    "create_monitor",
    "get_monitor",
    "list_monitors",
    "get_reference_profile",
    "set_reference_profile",
    "list_alerts",
    "monitor_report",
    "monitor_windows",
    "record_feedback",
    "run_monitor",
)
def test_monitors_and_feedback(client: loopml.Client, tmp_path: Path) -> None:
    seed(tmp_path)
    x = np.random.default_rng(0).normal(0, 1, 2000)
    profile = build_profile(pd.DataFrame({"x": x, "prediction": (x > 0).astype(int)}), prediction_column="prediction")
    client.monitors.set_reference_profile("churn", 1, profile)
    assert client.monitors.get_reference_profile("churn", 1).to_dict() == profile.to_dict()
    monitor = client.monitors.create(
        "churn",
        "churn",
        "1d",
        "1d",
        2,
        options={"reference_metrics": {"accuracy": 0.9}},
        kinds=["drift", "metric_drop"],
    )
    assert (monitor.window_seconds, monitor.label_delay_seconds, monitor.kinds) == (
        86_400,
        86_400,
        ("drift", "metric_drop"),
    )
    assert client.monitors.get("churn") == monitor
    assert [m.name for m in client.monitors.list()] == ["churn"]
    assert client.feedback.log(1, request_id="r0-0") == 1
    assert client.feedback.log_many([{"request_id": f"r0-{i}", "label": 1} for i in range(1, 60)]) == 59
    with pytest.raises(InvalidInput):
        client.feedback.log_many([{"label": 1}])
    result = client.monitors.run("churn", now=T0 + 2 * DAY)
    assert result["windows"] == 2 and result["performance"] == 1
    first, second = client.monitors.windows("churn")
    assert first.labelled_rows == 60 and second.performance is None  # its label delay has not passed
    assert first.performance is not None and 0 < first.performance["metrics"]["accuracy"] < 1
    assert client.monitors.windows("churn", limit=1) == [second]
    page = tmp_path / "report.html"
    assert "<svg" in client.monitors.report("churn", page) and page.exists()
    assert client.monitors.alerts("churn") == []
    with pytest.raises(MonitorNotFound):
        client.monitors.get("missing")


def test_log_model_with_training_data_stores_the_reference_profile(client: loopml.Client) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"temp": rng.random(500), "hum": rng.random(500)})
    frame["cnt"] = 100 * frame["temp"] + rng.normal(0, 1, 500)
    model = LinearRegression().fit(frame[["temp", "hum"]], frame["cnt"])
    run = client.runs.create("bike", "lin")
    version = client.models.log(run.id, model, "bike", datasets={"training": frame}, register=True)
    profile = client.monitors.get_reference_profile("bike", version.version)
    assert (profile.prediction_column, profile.label_column) == ("prediction", "cnt")
    assert profile.row_count == 500 and set(profile.columns) == {"temp", "hum", "cnt", "prediction"}
    assert profile["prediction"].mean == pytest.approx(float(np.mean(model.predict(frame[["temp", "hum"]]))))


@pytest.mark.operations("backfill_monitor")
def test_backfill_from_files(client: loopml.Client, tmp_path: Path) -> None:
    seed(tmp_path)
    client.monitors.create("live", "churn", "1d", model="churn", version=1)
    client.monitors.create("past", "elsewhere", "1d", model="churn", version=1)
    client.monitors.run("live", now=T0 + 2 * DAY)
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 120)  # the same draw as seed()
    frame = pd.DataFrame(
        {
            "request_id": [f"r{day}-{i}" for day in range(2) for i in range(60)],
            "time_ms": [T0 + day * DAY + i for day in range(2) for i in range(60)],
            "x": values,
            "answer": (values > 0).astype(int),
        }
    )
    frame.to_parquet(tmp_path / "past.parquet")
    labels = pd.DataFrame({"request_id": frame["request_id"], "label": 1})
    result = client.monitors.backfill(
        "past", tmp_path / "past.parquet", labels, prediction_column="answer", now=T0 + 2 * DAY
    )
    assert (result["windows"], result["performance"]) == (2, 2)
    live, past = client.monitors.windows("live"), client.monitors.windows("past")
    assert [(w.start_time, w.rows) for w in past] == [(w.start_time, w.rows) for w in live]
    assert past[0].labelled_rows == 60 and past[0].performance is not None
    with pytest.raises(InvalidInput, match="prediction"):
        client.monitors.backfill("past", tmp_path / "past.parquet")
