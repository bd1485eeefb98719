"""Each protocol's happy path answers exactly what the model itself predicts, with the id and version headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from loopml import __version__

from .support import FEATURES, Packages, deployment, make_app, version


@pytest.fixture(scope="module")
def client(packages: Packages) -> Iterator[TestClient]:
    app, _ = make_app(deployment(version(packages, 1)))
    with TestClient(app) as client:
        yield client


def test_native_records_and_columns(client: TestClient, packages: Packages) -> None:
    records = packages.records(3)
    expected = packages.expected(1, records)

    response = client.post("/v1/deployments/bike/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == expected
    assert (body["deployment"], body["model"], body["version"]) == ("bike", "bike", 1)
    assert response.headers["x-loopml-model-version"] == "bike/1"
    assert body["id"] == response.headers["x-request-id"]
    assert len(body["id"]) == 32

    columns = {name: [row[name] for row in records] for name in FEATURES}
    response = client.post("/v1/deployments/bike/predict", json={"columns": columns})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected


def test_client_request_id_is_kept_and_a_bad_one_replaced(client: TestClient, packages: Packages) -> None:
    body = {"records": packages.records(1)}
    response = client.post("/v1/deployments/bike/predict", json=body, headers={"X-Request-Id": "order-42.a"})
    assert response.headers["x-request-id"] == "order-42.a"
    assert response.json()["id"] == "order-42.a"
    response = client.post("/v1/deployments/bike/predict", json=body, headers={"X-Request-Id": "bad id\twith tab"})
    assert response.headers["x-request-id"] != "bad id\twith tab"
    assert len(response.headers["x-request-id"]) == 32


def test_oip_one_tensor_per_column(client: TestClient, packages: Packages) -> None:
    records = packages.records(4)
    inputs = [
        {
            "name": name,
            "shape": [4, 1] if name == "temp" else [4],
            "datatype": "FP64" if isinstance(records[0][name], float) else "INT64",
            "data": [[row[name]] for row in records] if name == "temp" else [row[name] for row in records],
        }
        for name in FEATURES
    ]
    response = client.post("/v2/models/bike/infer", json={"id": "req-7", "inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-7"
    assert body["model_name"] == "bike"
    assert body["model_version"] == "1"
    assert body["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [4], "data": packages.expected(1, records)}
    ]
    assert response.headers["x-loopml-model-version"] == "bike/1"
    assert response.headers["x-request-id"] == "req-7"  # no X-Request-Id header: the OIP id names the request


def test_oip_one_matrix_tensor_flat_or_nested_and_by_version(client: TestClient, packages: Packages) -> None:
    records = packages.records(2)
    rows = [[float(row[name]) for name in FEATURES] for row in records]
    expected = packages.expected(1, records)
    for data in (rows, [value for row in rows for value in row]):
        request = {"inputs": [{"name": "input-0", "shape": [2, len(FEATURES)], "datatype": "FP64", "data": data}]}
        response = client.post("/v2/models/bike/versions/1/infer", json=request)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == expected
        assert "id" in response.json()


def test_oip_metadata_health_and_ready(client: TestClient) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "loopml"
    meta = client.get("/v2/models/bike").json()
    assert meta["name"] == "bike"
    assert meta["versions"] == ["1"]
    assert [t["name"] for t in meta["inputs"]] == FEATURES
    assert {t["name"]: t["datatype"] for t in meta["inputs"]}["temp"] == "FP64"
    assert {t["name"]: t["datatype"] for t in meta["inputs"]}["hr"] == "INT64"
    assert meta["outputs"][0]["name"] == "predict"
    assert client.get("/v2/models/bike/ready").json() == {"name": "bike", "ready": True}
    assert client.get("/v2/models/bike/versions/1/ready").status_code == 200
    missing = client.get("/v2/models/nope/ready")
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]
    assert client.get("/v2/models/bike/versions/9").status_code == 404


@pytest.mark.parametrize(
    "payload",
    ["dataframe_split", "dataframe_split_reordered", "dataframe_records", "instances", "instances_rows", "inputs"],
)
def test_invocations_json_formats(client: TestClient, packages: Packages, payload: str) -> None:
    records = packages.records(3)
    rows = [[row[name] for name in FEATURES] for row in records]
    reordered = list(reversed(FEATURES))
    body = {
        "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": rows}},
        "dataframe_split_reordered": {
            "dataframe_split": {
                "index": [0, 1, 2],
                "columns": [*reordered, "extra"],
                "data": [[row[name] for name in reordered] + ["x"] for row in records],
            }
        },
        "dataframe_records": {"dataframe_records": [{**row, "extra": 1} for row in records]},
        "instances": {"instances": records},
        "instances_rows": {"instances": rows},
        "inputs": {"inputs": {name: [row[name] for row in records] for name in FEATURES}},
    }[payload]
    response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": packages.expected(1, records)}
    assert response.headers["x-loopml-model-version"] == "bike/1"


def test_invocations_csv(client: TestClient, packages: Packages) -> None:
    records = packages.records(3)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FEATURES)
    writer.writeheader()
    writer.writerows(records)
    response = client.post("/invocations", content=text.getvalue(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": packages.expected(1, records)}


def test_mlflow_side_routes(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    version = client.get("/version")
    assert version.status_code == 200
    assert version.text == __version__
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["deployments"]["bike"]["versions"][0]["flavor"] == "sklearn"


def test_fast_path_is_used_for_a_dataframe_fitted_sklearn_model(client: TestClient) -> None:
    app = client.app
    assert app.host.routes["bike"].live[0].served.model.fast_path  # type: ignore[attr-defined]


def test_invocations_needs_exactly_one_deployment(packages: Packages) -> None:
    app, _ = make_app(deployment(version(packages, 1)), deployment(version(packages, 2), name="bike2"))
    with TestClient(app) as client:
        response = client.post("/invocations", json={"dataframe_records": packages.records(1)})
        assert response.status_code == 400
        assert "/v1/deployments/{name}/predict" in response.json()["message"]
        assert response.json()["error_code"] == "BAD_REQUEST"
        response = client.post("/v1/deployments/bike2/predict", json={"records": packages.records(1)})
        assert response.json()["predictions"] == packages.expected(2, packages.records(1))
