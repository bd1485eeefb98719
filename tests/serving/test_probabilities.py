"""Class probabilities on every protocol: the native `"output": "probabilities"`, OIP's `probabilities` output
(and MLServer's `predict_proba`), MLflow's `params={"predict_method": "predict_proba"}` on `/invocations`; the
request log keeps them with the class order; a model without predict_proba is a 400."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from loopml.registry import save_model
from loopml.serving import ServingVersion

from .support import DATA, FEATURES, MemorySink, Packages, deployment, make_app, version


@dataclass(frozen=True)
class Classifiers:
    busy: Path  # HistGradientBoostingClassifier, labels "busy"/"quiet" (predicts from compiled trees)
    level: Path  # DecisionTreeClassifier, labels "high"/"low"/"mid" (scikit-learn's predict on the matrix)
    models: dict[str, Any]
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> Classifiers:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.read_csv(DATA)
    train, test = frame.iloc[:3000], frame.iloc[10000:10040].reset_index(drop=True)
    busy = np.where(train["cnt"] > 150, "busy", "quiet")
    level = np.select([train["cnt"] < 50, train["cnt"] < 200], ["low", "mid"], "high")
    root = tmp_path_factory.mktemp("classifiers")
    models = {
        "busy": HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(train[FEATURES], busy),
        "level": DecisionTreeClassifier(max_depth=5, random_state=0).fit(train[FEATURES], level),
    }
    for name, model in models.items():
        save_model(model, root / name, input_example=train[FEATURES].iloc[:5])
    return Classifiers(root / "busy", root / "level", models, test)


def rows(classifiers: Classifiers, n: int = 3) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = classifiers.frame.iloc[:n][FEATURES].to_dict(orient="records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in records]


def expected(classifiers: Classifiers, name: str, records: list[dict[str, Any]]) -> tuple[list[Any], Any, Any]:
    model = classifiers.models[name]
    frame = pd.DataFrame(records, columns=FEATURES)
    return model.classes_.tolist(), model.predict_proba(frame), model.predict(frame).tolist()


def oip_inputs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": "INT64" if all(type(r[name]) is int for r in records) else "FP64",
            "data": [r[name] for r in records],
        }
        for name in FEATURES
    ]


@pytest.fixture(scope="module")
def served(classifiers: Classifiers, packages: Packages) -> Iterator[tuple[TestClient, MemorySink]]:
    sink = MemorySink()
    app, _ = make_app(
        deployment(ServingVersion("busy", 1, classifiers.busy), name="busy"),
        deployment(ServingVersion("level", 1, classifiers.level), name="level"),
        deployment(version(packages, 1), name="bike"),
        sink=sink,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, sink


@pytest.mark.parametrize("name", ["busy", "level"])
def test_native_answers_probabilities_in_the_models_class_order(
    served: tuple[TestClient, MemorySink], classifiers: Classifiers, name: str
) -> None:
    client, _ = served
    records = rows(classifiers)
    answer = client.post(f"/v1/deployments/{name}/predict", json={"records": records, "output": "probabilities"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    classes, proba, labels = expected(classifiers, name, records)
    assert body["classes"] == classes
    np.testing.assert_allclose(body["probabilities"], proba, rtol=1e-12)
    assert body["predictions"] == labels
    plain = client.post(f"/v1/deployments/{name}/predict", json={"records": records}).json()
    assert "probabilities" not in plain and plain["predictions"] == labels


def test_oip_probabilities_output(served: tuple[TestClient, MemorySink], classifiers: Classifiers) -> None:
    client, _ = served
    records = rows(classifiers, 4)
    classes, proba, labels = expected(classifiers, "level", records)
    url = "/v2/models/level/infer"
    only = client.post(url, json={"inputs": oip_inputs(records), "outputs": [{"name": "probabilities"}]}).json()
    [tensor] = only["outputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("probabilities", "FP64", [4, 3])
    assert tensor["parameters"]["classes"] == classes
    np.testing.assert_allclose(np.reshape(tensor["data"], (4, 3)), proba, rtol=1e-12)
    both = client.post(
        url, json={"inputs": oip_inputs(records), "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    ).json()
    assert [t["name"] for t in both["outputs"]] == ["predict", "predict_proba"]
    assert both["outputs"][0]["data"] == labels and both["outputs"][1]["data"] == tensor["data"]
    by_parameter = client.post(
        url, json={"inputs": oip_inputs(records), "parameters": {"predict_method": "predict_proba"}}
    ).json()
    assert by_parameter["outputs"][0]["data"] == tensor["data"]
    metadata = client.get("/v2/models/level").json()
    assert metadata["outputs"][1] == {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [-1, 3],
        "parameters": {"classes": classes},
    }
    assert [o["name"] for o in client.get("/v2/models/bike").json()["outputs"]] == ["predict"]
    unknown = client.post(url, json={"inputs": oip_inputs(records), "outputs": [{"name": "logits"}]})
    assert unknown.status_code == 400 and "probabilities" in unknown.json()["error"]


def test_invocations_follow_mlflows_predict_method(classifiers: Classifiers) -> None:
    app, _ = make_app(deployment(ServingVersion("busy", 1, classifiers.busy), name="busy"))
    records = rows(classifiers)
    _, proba, labels = expected(classifiers, "busy", records)
    split = {"columns": FEATURES, "data": [[r[c] for c in FEATURES] for r in records]}
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post(
            "/invocations", json={"dataframe_split": split, "params": {"predict_method": "predict_proba"}}
        )
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], proba, rtol=1e-12)
        plain = client.post("/invocations", json={"dataframe_split": split, "params": {"predict_method": "predict"}})
        assert plain.json()["predictions"] == labels
        wrong = client.post("/invocations", json={"dataframe_split": split, "params": {"predict_method": "score"}})
        assert wrong.status_code == 400 and "predict_proba" in wrong.json()["message"]
        unknown = client.post("/invocations", json={"dataframe_split": split, "params": {"temperature": 1}})
        assert unknown.status_code == 400 and "temperature" in unknown.json()["message"]


def test_a_model_without_predict_proba_is_a_400_on_every_protocol(packages: Packages) -> None:
    app, _ = make_app(deployment(version(packages, 1)))
    records = packages.records(1)
    with TestClient(app, raise_server_exceptions=False) as client:
        native = client.post("/v1/deployments/bike/predict", json={"records": records, "output": "probabilities"})
        oip = client.post(
            "/v2/models/bike/infer", json={"inputs": oip_inputs(records), "outputs": [{"name": "probabilities"}]}
        )
        mlflow = client.post(
            "/invocations", json={"dataframe_records": records, "params": {"predict_method": "predict_proba"}}
        )
        for response, message in (
            (native, native.json()["error"]["message"]),
            (oip, oip.json()["error"]),
            (mlflow, mlflow.json()["message"]),
        ):
            assert response.status_code == 400
            assert "bike/1" in message and "no predict_proba" in message
        typo = client.post("/v1/deployments/bike/predict", json={"records": records, "output": "proba"})
        assert typo.status_code == 400 and "probabilities" in typo.json()["error"]["message"]


def test_the_request_log_keeps_probabilities_with_the_class_order(
    served: tuple[TestClient, MemorySink], classifiers: Classifiers
) -> None:
    client, sink = served
    records = rows(classifiers, 2)
    asked = client.post("/v1/deployments/busy/predict", json={"records": records, "output": "probabilities"}).json()
    not_asked = client.post("/v1/deployments/busy/predict", json={"records": records}).json()
    logged = {r.request_id: r for r in sink.records}
    with_probabilities = logged[asked["id"]]
    assert with_probabilities.classes == ["busy", "quiet"]
    assert with_probabilities.probabilities == asked["probabilities"]
    assert with_probabilities.outputs == asked["predictions"]
    assert logged[not_asked["id"]].probabilities is None and logged[not_asked["id"]].classes is None
