"""MLflow's experiment endpoints, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

from ..support import ADMIN_SECRET, Api

MLFLOW = "/api/2.0/mlflow"


def test_create_then_get_by_id_and_by_name(api: Api) -> None:
    created = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "fraud"}, headers=api.headers())
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    assert isinstance(experiment_id, str) and experiment_id.isdigit()

    got = api.client.get(f"{MLFLOW}/experiments/get", params={"experiment_id": experiment_id}, headers=api.headers())
    assert got.status_code == 200, got.text
    experiment = got.json()["experiment"]
    assert experiment["name"] == "fraud"
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"

    by_name = api.client.get(
        f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": "fraud"}, headers=api.headers()
    )
    assert by_name.json()["experiment"]["experiment_id"] == experiment_id
    # the same experiment through loopml's own API
    native = api.client.get(f"/api/v1/experiments/{experiment_id}", headers=api.headers())
    assert native.json()["experiment"]["name"] == "fraud"


def test_errors_have_mlflow_codes_and_statuses(api: Api) -> None:
    api.client.post(f"{MLFLOW}/experiments/create", json={"name": "dup"}, headers=api.headers())
    again = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "dup"}, headers=api.headers())
    assert again.status_code == 400
    assert again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    missing = api.client.get(f"{MLFLOW}/experiments/get", params={"experiment_id": "999"}, headers=api.headers())
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    for bad in ("abc", "-1", "99999999999999999999"):
        answer = api.client.get(f"{MLFLOW}/experiments/get", params={"experiment_id": bad}, headers=api.headers())
        assert answer.status_code == 404, bad
        assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    no_name = api.client.post(f"{MLFLOW}/experiments/create", json={}, headers=api.headers())
    assert no_name.status_code == 400
    assert no_name.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Missing value for required parameter 'name'.",
    }
    not_json = api.client.post(f"{MLFLOW}/experiments/create", content=b"{nope", headers=api.headers())
    assert not_json.status_code == 400
    assert not_json.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    unknown = api.client.get(f"{MLFLOW}/no-such-thing", headers=api.headers())
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_tokens_as_bearer_or_basic_password(api: Api) -> None:
    anonymous = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "x"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    wrong = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "x"}, headers=api.headers("lml_nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error_code"] == "UNAUTHENTICATED"

    basic = base64.b64encode(f"alice:{ADMIN_SECRET}".encode()).decode()
    created = api.client.post(
        f"{MLFLOW}/experiments/create", json={"name": "basic"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert created.status_code == 200, created.text
    garbled = api.client.post(
        f"{MLFLOW}/experiments/create", json={"name": "x"}, headers={"Authorization": "Basic !!!"}
    )
    assert garbled.status_code == 401
    assert garbled.json()["error_code"] == "UNAUTHENTICATED"

    viewer = api.token("viewer")
    refused = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "v"}, headers=api.headers(viewer))
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"


def test_ajax_twin_and_server_info(api: Api) -> None:
    created = api.client.post("/ajax-api/2.0/mlflow/experiments/create", json={"name": "ui"}, headers=api.headers())
    assert created.status_code == 200, created.text
    info = api.client.get("/api/3.0/mlflow/server-info")
    assert info.status_code == 200
    assert info.json()["store_type"] == "SqlStore"
