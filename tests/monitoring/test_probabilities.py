"""Monitors score the class probabilities a classifier logged (ROC AUC, log loss) once labels arrive, binary and
multiclass, with the class order the model logged; `positive_class` picks the class of binary precision,
recall, F1 and ROC AUC. Checked against scikit-learn on the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from loopml.errors import InvalidInput
from loopml.serving.records import RequestRecord

from .support import DAY, EDITOR, T0, VIEWER, World, record

N = 240


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    made = World(db_url, tmp_path)
    yield made
    made.close()


def logged(i: int, label: Any, proba: list[float], classes: list[Any]) -> RequestRecord:
    plain = record(f"r{i}", T0 + i * 100, {"x": [float(i)]}, [label])
    return plain._replace(probabilities=[proba], classes=classes)


def scenario(world: World, classes: list[Any], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N logged requests of a classifier over `classes`, each answered with probabilities, and their labels."""
    world.register("churn")
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(classes), N)
    raw = rng.random((N, len(classes))) + 1.5 * np.eye(len(classes))[truth] * rng.random((N, 1))
    proba = raw / raw.sum(axis=1, keepdims=True)
    predicted = proba.argmax(axis=1)
    world.log([logged(i, classes[predicted[i]], proba[i].tolist(), classes) for i in range(N)])
    labels = [{"request_id": f"r{i}", "label": classes[truth[i]], "time_ms": T0 + i} for i in range(N)]
    world.monitoring.record_feedback(EDITOR, labels)
    names = np.asarray(classes, dtype=object)
    return names[truth], names[predicted], proba


def metrics_of(world: World, name: str, **options: Any) -> dict[str, Any]:
    world.monitoring.create_monitor(EDITOR, name, "churn", window="1d", kinds=["metric_drop"], options=options)
    world.monitoring.run_monitor(EDITOR, name, now=T0 + 2 * DAY)
    (window,) = world.monitoring.windows(VIEWER, name)
    assert window.performance is not None and window.labelled_rows == N
    return window.performance


def test_binary_string_labels_default_to_the_second_class_and_take_a_positive_class(world: World) -> None:
    truth, predicted, proba = scenario(world, ["retained", "churned"], seed=1)  # the model's order, not sorted
    default = metrics_of(world, "default")["metrics"]
    # the default positive class is the second in sorted order: "retained" (sorted: churned, retained)
    assert default["precision"] == pytest.approx(skm.precision_score(truth, predicted, pos_label="retained"))
    assert default["recall"] == pytest.approx(skm.recall_score(truth, predicted, pos_label="retained"))
    assert default["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="retained"))
    assert default["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "retained", proba[:, 0]))
    # scikit-learn's log loss wants the columns in sorted class order
    assert default["log_loss"] == pytest.approx(skm.log_loss(truth, proba[:, [1, 0]], labels=["churned", "retained"]))
    assert default["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    chosen = metrics_of(world, "churned", positive_class="churned")["metrics"]
    assert chosen["precision"] == pytest.approx(skm.precision_score(truth, predicted, pos_label="churned"))
    assert chosen["recall"] == pytest.approx(skm.recall_score(truth, predicted, pos_label="churned"))
    assert chosen["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="churned"))
    assert chosen["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "churned", proba[:, 1]))
    assert chosen["log_loss"] == pytest.approx(default["log_loss"])


def test_multiclass_roc_auc_and_log_loss(world: World) -> None:
    classes = ["high", "low", "mid"]
    truth, predicted, proba = scenario(world, classes, seed=2)
    got = metrics_of(world, "levels")["metrics"]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=classes))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))


def test_integer_classes_in_the_models_order(world: World) -> None:
    classes = [0, 1, 2, 3]
    truth, _, proba = scenario(world, classes, seed=3)
    got = metrics_of(world, "ints")["metrics"]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth.astype(int), proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth.astype(int), proba, labels=classes))


def test_positive_class_is_checked(world: World) -> None:
    scenario(world, ["no", "yes"], seed=4)
    with pytest.raises(InvalidInput, match="positive_class"):
        world.monitoring.create_monitor(EDITOR, "bad", "churn", options={"positive_class": ["yes"]})
    performance = metrics_of(world, "typo", positive_class="Yes")
    assert "'Yes' is not one of the model's classes" in performance["error"]


def test_probabilities_served_logged_and_scored_end_to_end(world: World, tmp_path: Path) -> None:
    """A classifier answers probabilities over HTTP; the replica's request log publishes them; the monitor
    scores them once labels arrive, as scikit-learn does on the same rows."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from starlette.testclient import TestClient

    from loopml.monitoring import StoreSegmentPublisher
    from loopml.registry import save_model
    from loopml.serving import DeploymentSpec, ModelHost, ServingVersion, StaticSpecSource, create_serving_app
    from loopml.serving.request_log import RequestLog

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"tenure": rng.normal(0, 1, 400), "spend": rng.normal(0, 1, 400)})
    y = np.where(x["tenure"] + 0.5 * rng.normal(0, 1, 400) > 0, "stays", "leaves")
    model = LogisticRegression().fit(x, y)
    save_model(model, tmp_path / "pkg", input_example=x.iloc[:3])
    world.register("churn")
    spec = DeploymentSpec(name="churn", versions=(ServingVersion("churn", 1, tmp_path / "pkg"),))
    log = RequestLog(
        tmp_path / "replica-log", publisher=StoreSegmentPublisher(world.store, world.artifacts), flush_ms=20
    )
    app = create_serving_app(ModelHost(StaticSpecSource([spec])), request_log=log)
    rows = x.iloc[:N].to_dict(orient="records")
    ids = []
    with TestClient(app) as client:
        for row in rows:
            answer = client.post(
                "/v1/deployments/churn/predict", json={"records": [row], "output": "probabilities"}
            ).json()
            ids.append(answer["id"])
    log.close()
    truth = y[:N]
    world.monitoring.record_feedback(
        EDITOR, [{"request_id": i, "label": str(label)} for i, label in zip(ids, truth, strict=True)]
    )
    world.monitoring.create_monitor(EDITOR, "live", "churn", window=str(N), kinds=["metric_drop"])
    world.monitoring.run_monitor(EDITOR, "live")
    (window,) = world.monitoring.windows(VIEWER, "live")
    assert window.performance is not None and window.labelled_rows == N
    got = window.performance["metrics"]
    proba = model.predict_proba(x.iloc[:N])
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "stays", proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=model.classes_))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, model.predict(x.iloc[:N])))
