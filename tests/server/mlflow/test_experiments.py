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


def _call(api: Api, method: str, endpoint: str, body: dict[str, object]) -> dict[str, object]:
    answer = (
        api.client.get(f"{MLFLOW}{endpoint}", params=body, headers=api.headers())
        if method == "GET"
        else api.client.post(f"{MLFLOW}{endpoint}", json=body, headers=api.headers())
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def test_rename_tag_delete_restore_and_search(api: Api) -> None:
    ids = {}
    for name in ("churn", "fraud-a", "fraud-b"):
        ids[name] = _call(
            api, "POST", "/experiments/create", {"name": name, "tags": [{"key": "team", "value": name[:5]}]}
        )["experiment_id"]
    run = _call(api, "POST", "/runs/create", {"experiment_id": ids["fraud-a"]})["run"]
    assert isinstance(run, dict)

    def names(body: dict[str, object]) -> list[str]:
        found = _call(api, "POST", "/experiments/search", body).get("experiments", [])
        assert isinstance(found, list)
        return [e["name"] for e in found]

    assert names({"filter": "name LIKE 'fraud%'", "order_by": ["name DESC"]}) == ["fraud-b", "fraud-a"]
    assert names({"filter": "tags.team = 'churn'"}) == ["churn"]

    _call(api, "POST", "/experiments/update", {"experiment_id": ids["churn"], "new_name": "retention"})
    _call(
        api, "POST", "/experiments/set-experiment-tag", {"experiment_id": ids["churn"], "key": "owner", "value": "ann"}
    )
    got = _call(api, "GET", "/experiments/get", {"experiment_id": ids["churn"]})["experiment"]
    assert isinstance(got, dict)
    assert got["name"] == "retention"
    assert {t["key"]: t["value"] for t in got["tags"]} == {"team": "churn", "owner": "ann"}
    assert got["last_update_time"] >= got["creation_time"]
    _call(api, "POST", "/experiments/delete-experiment-tag", {"experiment_id": ids["churn"], "key": "owner"})
    clash = api.client.post(
        f"{MLFLOW}/experiments/update",
        json={"experiment_id": ids["churn"], "new_name": "fraud-a"},
        headers=api.headers(),
    )
    assert clash.status_code == 400 and clash.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    _call(api, "POST", "/experiments/delete", {"experiment_id": ids["fraud-a"]})
    assert "fraud-a" not in names({})
    assert names({"view_type": "DELETED_ONLY"}) == ["fraud-a"]
    deleted = _call(api, "GET", "/experiments/get-by-name", {"experiment_name": "fraud-a"})["experiment"]
    assert isinstance(deleted, dict) and deleted["lifecycle_stage"] == "deleted"
    run_id = run["info"]["run_id"]
    assert _call(api, "GET", "/runs/get", {"run_id": run_id})["run"]["info"]["lifecycle_stage"] == "deleted"  # type: ignore[index]
    refused = api.client.post(f"{MLFLOW}/runs/create", json={"experiment_id": ids["fraud-a"]}, headers=api.headers())
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    _call(api, "POST", "/experiments/restore", {"experiment_id": ids["fraud-a"]})
    assert sorted(names({})) == ["fraud-a", "fraud-b", "retention"]
    assert _call(api, "GET", "/runs/get", {"run_id": run_id})["run"]["info"]["lifecycle_stage"] == "active"  # type: ignore[index]

    first = _call(api, "POST", "/experiments/search", {"max_results": 2})
    assert len(first["experiments"]) == 2  # type: ignore[arg-type]
    second = _call(api, "POST", "/experiments/search", {"max_results": 2, "page_token": first["next_page_token"]})
    assert len(second["experiments"]) == 1 and "next_page_token" not in second  # type: ignore[arg-type]


def test_experiment_zero_is_the_callers_default_experiment(api: Api) -> None:
    run = _call(api, "POST", "/runs/create", {"experiment_id": "0"})["run"]
    assert isinstance(run, dict)
    default = _call(api, "GET", "/experiments/get", {"experiment_id": "0"})["experiment"]
    assert isinstance(default, dict)
    assert default["name"] == "Default" and run["info"]["experiment_id"] == default["experiment_id"]
