"""The rollout controller on a real classifier: its answers (class labels) are compared by their class
shares, and once labels arrive (feedback joined by request id) by accuracy, so a challenger 18 points less
accurate than the champion is rolled back even though its class shares look like the champion's.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0; an hour is
"busy" with at least 150 rentals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.artifacts import open_artifact_store
from loopml.deploy import RolloutController
from loopml.domain import Deployment
from loopml.monitoring import MonitoringService
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

from .conftest import EDITOR, VIEWER, World

DATA = Path(__file__).parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["season", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum"]
WEAK_FEATURES = ["season", "weathersit", "temp"]
WINDOW_S = 60


@pytest.fixture(scope="module")
def answers() -> pd.DataFrame:
    """2012 hours with the label and the answers of a champion and of a weak challenger trained on 2011."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.tree import DecisionTreeClassifier

    hours = pd.read_csv(DATA)
    label = np.where(hours["cnt"] >= 150, "busy", "quiet")
    train, test = (hours["yr"] == 0).to_numpy(), (hours["yr"] == 1).to_numpy()
    champion = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(hours[FEATURES][train], label[train])
    weak = DecisionTreeClassifier(max_depth=4, random_state=0).fit(hours[WEAK_FEATURES][train], label[train])
    later = hours[test].reset_index(drop=True)
    return pd.DataFrame(
        {
            "request_id": [f"hour-{i}" for i in later["instant"]],
            "label": label[test],
            "champion": champion.predict(later[FEATURES]),
            "challenger": weak.predict(later[WEAK_FEATURES]),
        }
    )


def serve(world: World, canary: Deployment, answers: pd.DataFrame, challenger: str, share: float = 0.15) -> None:
    """The request log of a replica that sent `share` of the hours to version 2 (answering `challenger`)."""
    rng = np.random.default_rng(0)
    log = RequestLog(world.log_dir, flush_ms=20)
    try:
        for i, row in enumerate(answers.itertuples(index=False)):
            to_canary = rng.random() < share
            log.append(
                RequestRecord(
                    request_id=row.request_id,
                    time_ms=canary.updated_at + 1 + i * 20,
                    deployment="bike-demand",
                    model="bike",
                    version=2 if to_canary else 1,
                    role="canary" if to_canary else "stable",
                    inputs={"hour": [i % 24]},
                    outputs=[getattr(row, challenger if to_canary else "champion")],
                    latency_ms=float(rng.normal(3.0, 0.3)),
                    status=200,
                    protocol="native",
                    sticky_key=None,
                )
            )
        log.seal()
    finally:
        log.close()


def label(world: World, answers: pd.DataFrame) -> None:
    monitoring = MonitoringService(world.store, open_artifact_store((world.log_dir.parent / "blobs").as_uri()))
    monitoring.record_feedback(
        EDITOR, [{"request_id": r.request_id, "label": r.label} for r in answers.itertuples(index=False)]
    )


def start_canary(world: World) -> Deployment:
    world.deploy.deploy(EDITOR, "bike-demand", "bike@champion")
    return world.deploy.deploy(EDITOR, "bike-demand", "bike@challenger", strategy="canary", analysis_seconds=WINDOW_S)


def test_a_classifier_answering_labels_is_compared_by_its_class_shares(world: World, answers: pd.DataFrame) -> None:
    canary = start_canary(world)
    serve(world, canary, answers.sample(n=1200, random_state=0), "challenger")
    [decision] = RolloutController(world.deploy).tick(canary.updated_at + WINDOW_S * 1000)
    assert (decision.outcome, decision.action) == ("success", "advance")  # no labels yet; the shares look alike
    numbers = decision.metrics
    assert (numbers["prediction_kind"], numbers["prediction_distance_method"]) == ("label", "psi_of_class_shares")
    assert 0 < numbers["prediction_distance"] < 0.25
    assert set(numbers["prediction_class_shares"]) == {"busy", "quiet"}
    assert numbers["quality"] == {
        "verdict": "waiting",
        "stable_labels": 0,
        "candidate_labels": 0,
        "note": "0 stable and 0 candidate labels (at least 100 each needed)",
    }


def test_a_much_less_accurate_classifier_is_rolled_back_once_labels_arrive(world: World, answers: pd.DataFrame) -> None:
    hours = answers.sample(n=1200, random_state=0)  # hours from the whole of 2012
    canary = start_canary(world)
    serve(world, canary, hours, "challenger")
    label(world, hours)
    [decision] = RolloutController(world.deploy).tick(canary.updated_at + 31_000)  # before the window's end
    assert (decision.outcome, decision.action) == ("failed", "rollback")
    assert decision.metrics["failed_checks"] == ["quality"]
    quality = decision.metrics["quality"]
    assert (quality["metric"], quality["verdict"]) == ("accuracy", "fail")
    assert quality["stable"] - quality["candidate"] > 0.12
    assert quality["candidate_labels"] >= 100
    assert "accuracy" in decision.reason
    assert world.deploy.status(VIEWER, "bike-demand").state == "rolled_back"


def test_an_equally_good_classifier_passes_its_quality_check(world: World, answers: pd.DataFrame) -> None:
    hours = answers.sample(n=1200, random_state=0)
    canary = start_canary(world)
    serve(world, canary, hours, "champion")  # the challenger answers as the champion does
    label(world, hours)
    [decision] = RolloutController(world.deploy).tick(canary.updated_at + WINDOW_S * 1000)
    assert (decision.outcome, decision.action) == ("success", "advance")
    assert decision.metrics["quality"]["verdict"] == "pass"
    assert decision.metrics["quality"]["stable"] > 0.75
