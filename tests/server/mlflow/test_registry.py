"""MLflow's model registry and logged-model endpoints, in-process, on SQLite and PostgreSQL.

The model files are a real MLflow 3.17 sklearn model (tests/data/mlflow/sklearn_skops), uploaded through the
artifact proxy exactly as `mlflow.sklearn.log_model` uploads them (one PUT per file).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from loopml.store import read_events

from ..support import Api

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SKLEARN_MODEL = Path(__file__).resolve().parents[2] / "data" / "mlflow" / "sklearn_skops"


def _call(api: Api, method: str, path: str, body: dict[str, Any] | None = None, want: int = 200) -> Any:
    kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body or {}}
    answer = api.client.request(method, f"{MLFLOW}{path}", headers=api.headers(), **kwargs)
    assert answer.status_code == want, answer.text
    return answer.json()


def _logged_model(api: Api, files: Path = SKLEARN_MODEL, finalize: bool = True) -> dict[str, Any]:
    """A run with a logged model whose files went through the artifact proxy, finalized READY."""
    experiment = _call(api, "POST", "/experiments/create", {"name": f"fraud-{uuid.uuid4().hex[:8]}"})["experiment_id"]
    run = _call(api, "POST", "/runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
    model = _call(
        api,
        "POST",
        "/logged-models",
        {"experiment_id": experiment, "name": "model", "source_run_id": run, "tags": [{"key": "k", "value": "v"}]},
    )["model"]["info"]
    assert model["status"] == "LOGGED_MODEL_PENDING"
    assert model["artifact_uri"] == f"mlflow-artifacts:/{experiment}/models/{model['model_id']}/artifacts"
    root = model["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for path in sorted(files.iterdir()):
        put = api.client.put(f"{ARTIFACTS}/{root}/{path.name}", content=path.read_bytes(), headers=api.headers())
        assert put.status_code == 200, put.text
    if finalize:
        done = _call(api, "PATCH", f"/logged-models/{model['model_id']}", {"status": "LOGGED_MODEL_READY"})
        assert done["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    return {"experiment": experiment, "run": run, "model_id": model["model_id"], "root": root}


def test_a_logged_model_registers_as_a_loopml_version(api: Api) -> None:
    logged = _logged_model(api)
    _call(api, "POST", "/registered-models/create", {"name": "fraud", "tags": [{"key": "team", "value": "risk"}]})
    again = _call(api, "POST", "/registered-models/create", {"name": "fraud"}, want=400)
    assert again["error_code"] == "RESOURCE_ALREADY_EXISTS"
    created = _call(
        api,
        "POST",
        "/model-versions/create",
        {
            "name": "fraud",
            "source": f"models:/{logged['model_id']}",
            "run_id": logged["run"],
            "model_id": logged["model_id"],
        },
    )["model_version"]
    assert created["version"] == "1" and created["status"] == "READY"
    assert created["source"] == f"models:/{logged['model_id']}" and created["model_id"] == logged["model_id"]

    # the same version through loopml's own API: a package with its sha256 manifest and MLflow's signature
    native = api.client.get("/api/v1/models/fraud/versions/1", headers=api.headers()).json()["model_version"]
    assert native["flavor"] == "sklearn" and native["artifact_path"] == f"models/{logged['model_id']}"
    assert [c["name"] for c in native["signature"]["inputs"]] == ["temp", "atemp", "hum", "windspeed", "hr"]
    files = api.client.get(f"/api/v1/runs/{logged['run']}/artifacts", headers=api.headers()).json()["artifacts"]
    manifest = next(f for f in files if f["path"] == f"models/{logged['model_id']}/loopml-model.json")
    assert manifest["digest"] == native["manifest_digest"]

    uri = _call(api, "GET", "/model-versions/get-download-uri", {"name": "fraud", "version": "1"})["artifact_uri"]
    assert uri == f"mlflow-artifacts:/{logged['root']}"
    listing = api.client.get(f"{ARTIFACTS}", params={"path": logged["root"]}, headers=api.headers()).json()
    assert {f["path"] for f in listing["files"]} == {p.name for p in SKLEARN_MODEL.iterdir()}
    original = api.client.get(f"{ARTIFACTS}/{logged['root']}/MLmodel", headers=api.headers())
    assert original.content == (SKLEARN_MODEL / "MLmodel").read_bytes()


def test_aliases_tags_stages_and_deletion(api: Api) -> None:
    logged = _logged_model(api)
    _call(api, "POST", "/registered-models/create", {"name": "fraud"})
    for _ in range(2):
        _call(api, "POST", "/model-versions/create", {"name": "fraud", "source": f"models:/{logged['model_id']}"})
    _call(api, "POST", "/registered-models/alias", {"name": "fraud", "alias": "champion", "version": "2"})
    by_alias = _call(api, "GET", "/registered-models/alias", {"name": "fraud", "alias": "champion"})["model_version"]
    assert by_alias["version"] == "2" and by_alias["aliases"] == ["champion"]
    model = _call(api, "GET", "/registered-models/get", {"name": "fraud"})["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]

    _call(api, "POST", "/model-versions/set-tag", {"name": "fraud", "version": "1", "key": "ok", "value": "yes"})
    _call(api, "POST", "/registered-models/set-tag", {"name": "fraud", "key": "team", "value": "risk"})
    _call(api, "PATCH", "/model-versions/update", {"name": "fraud", "version": "1", "description": "first"})
    staged = _call(
        api, "POST", "/model-versions/transition-stage", {"name": "fraud", "version": "1", "stage": "production"}
    )["model_version"]
    assert staged["current_stage"] == "Production" and staged["tags"] == [{"key": "ok", "value": "yes"}]
    refused = _call(
        api, "POST", "/model-versions/transition-stage", {"name": "fraud", "version": "2", "stage": "Archived"}, 400
    )
    assert "champion" in refused["message"]  # archiving an aliased version: move the alias first
    latest = _call(api, "POST", "/registered-models/get-latest-versions", {"name": "fraud", "stages": ["Production"]})
    assert [v["version"] for v in latest["model_versions"]] == ["1"]
    _call(api, "DELETE", "/model-versions/delete-tag", {"name": "fraud", "version": "1", "key": "ok"})
    _call(api, "DELETE", "/registered-models/delete-tag", {"name": "fraud", "key": "team"})
    assert _call(api, "GET", "/model-versions/get", {"name": "fraud", "version": "1"})["model_version"]["tags"] == []

    _call(api, "DELETE", "/model-versions/delete", {"name": "fraud", "version": "2"})
    gone = _call(api, "GET", "/registered-models/alias", {"name": "fraud", "alias": "champion"}, want=404)
    assert gone["error_code"] == "RESOURCE_DOES_NOT_EXIST"  # the alias went with its version, as in MLflow
    _call(api, "DELETE", "/registered-models/delete", {"name": "fraud"})
    missing = _call(api, "GET", "/registered-models/get", {"name": "fraud"}, want=404)
    assert missing["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with api.store.read() as unit:
        actions = [e.action for e in read_events(unit.connection)]
    for action in ("model_version.delete", "model.delete_alias", "model.delete", "logged_model.finalize"):
        assert action in actions


def test_a_deployed_model_cannot_be_deleted(api: Api) -> None:
    logged = _logged_model(api)
    _call(api, "POST", "/registered-models/create", {"name": "fraud"})
    _call(api, "POST", "/model-versions/create", {"name": "fraud", "source": f"models:/{logged['model_id']}"})
    deployed = api.client.post("/api/v1/deployments", json={"name": "fraud", "model": "fraud/1"}, headers=api.headers())
    assert deployed.status_code == 200, deployed.text
    refused = _call(api, "DELETE", "/registered-models/delete", {"name": "fraud"}, want=409)
    assert refused["error_code"] == "RESOURCE_CONFLICT" and "deployment 'fraud'" in refused["message"]
    _call(api, "DELETE", "/model-versions/delete", {"name": "fraud", "version": "1"}, want=409)


def test_search_compiles_mlflow_filters_to_loopml_search(api: Api) -> None:
    logged = _logged_model(api)
    for name in ("fraud-a", "fraud-b", "churn"):
        _call(api, "POST", "/registered-models/create", {"name": name, "tags": [{"key": "team", "value": name[:5]}]})
        _call(api, "POST", "/model-versions/create", {"name": name, "source": f"models:/{logged['model_id']}"})

    def names(filter_string: str, **extra: Any) -> list[str]:
        found = _call(api, "GET", "/registered-models/search", {"filter": filter_string, **extra})
        return [m["name"] for m in found["registered_models"]]

    assert names("name LIKE 'fraud%'") == ["fraud-a", "fraud-b"]
    assert names("tags.team = 'churn'") == ["churn"]
    # what MLflow 3 clients add to every registry search (loopml stores no prompts)
    assert names("name LIKE 'fraud%' AND tag.`mlflow.prompt.is_prompt` != 'true'") == ["fraud-a", "fraud-b"]
    assert names("name ILIKE 'FRAUD-%'", order_by=["name DESC"]) == ["fraud-b", "fraud-a"]
    page = _call(api, "GET", "/registered-models/search", {"max_results": 2})
    assert len(page["registered_models"]) == 2 and page["next_page_token"]
    rest = _call(api, "GET", "/registered-models/search", {"max_results": 2, "page_token": page["next_page_token"]})
    assert len(rest["registered_models"]) == 1
    versions = _call(api, "GET", "/model-versions/search", {"filter": "name = 'churn' and version_number >= 1"})
    assert [(v["name"], v["version"]) for v in versions["model_versions"]] == [("churn", "1")]
    by_run = _call(api, "GET", "/model-versions/search", {"filter": f"run_id = '{logged['run']}'"})
    assert len(by_run["model_versions"]) == 3

    for bad in ("name = ", "source_path = 'x'", "nosuchfield = 1", "name = 'a' OR name = 'b'"):
        answer = _call(api, "GET", "/registered-models/search", {"filter": bad}, want=400)
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE", bad


def test_what_loopml_cannot_register_is_refused_with_the_reason(api: Api, tmp_path: Path) -> None:
    torch_like = tmp_path / "model"
    torch_like.mkdir()
    (torch_like / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n")
    logged = _logged_model(api, torch_like)
    record = _call(api, "GET", f"/logged-models/{logged['model_id']}")["model"]["info"]
    assert record["status"] == "LOGGED_MODEL_READY" and "pytorch" in record["status_message"]
    _call(api, "POST", "/registered-models/create", {"name": "net"})
    refused = _call(
        api, "POST", "/model-versions/create", {"name": "net", "source": f"models:/{logged['model_id']}"}, 400
    )
    assert "cannot be registered in loopml" in refused["message"] and "pytorch" in refused["message"]

    pending = _logged_model(api, finalize=False)
    not_ready = _call(
        api, "POST", "/model-versions/create", {"name": "net", "source": f"models:/{pending['model_id']}"}, 400
    )
    assert "PENDING" in not_ready["message"]
    for source in ("s3://bucket/model", "/etc/passwd", "file:///tmp/model", "models:/net/1"):
        answer = _call(api, "POST", "/model-versions/create", {"name": "net", "source": source}, want=400)
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE", source
    for model_id in ("m-nope", "m-" + "0" * 32, "m-%2e%2e"):
        assert _call(api, "GET", f"/logged-models/{model_id}", want=404)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    missing = _call(api, "GET", "/model-versions/get", {"name": "net", "version": "7"}, want=404)
    assert missing["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad_version = _call(api, "GET", "/model-versions/get", {"name": "net", "version": "one"}, want=400)
    assert bad_version["error_code"] == "INVALID_PARAMETER_VALUE"


def test_logged_model_tags_params_and_search(api: Api) -> None:
    logged = _logged_model(api)
    model_id = logged["model_id"]
    _call(api, "PATCH", f"/logged-models/{model_id}/tags", {"tags": [{"key": "mlflow.modelVersions", "value": "[]"}]})
    _call(api, "POST", f"/logged-models/{model_id}/params", {"params": [{"key": "alpha", "value": "0.5"}]})
    _call(api, "DELETE", f"/logged-models/{model_id}/tags/k")
    got = _call(api, "GET", f"/logged-models/{model_id}")["model"]
    assert got["info"]["tags"] == [{"key": "mlflow.modelVersions", "value": "[]"}]
    assert got["data"]["params"] == [{"key": "alpha", "value": "0.5"}]
    found = _call(api, "POST", "/logged-models/search", {"experiment_ids": [logged["experiment"]]})
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    refused = _call(
        api, "POST", "/logged-models/search", {"experiment_ids": [logged["experiment"]], "filter": "x"}, 400
    )
    assert refused["error_code"] == "INVALID_PARAMETER_VALUE"
    wrong_experiment = api.client.get(f"{ARTIFACTS}/999/models/{model_id}/artifacts/MLmodel", headers=api.headers())
    assert wrong_experiment.status_code == 404
    no_run = _call(api, "POST", "/logged-models", {"experiment_id": logged["experiment"], "name": "x"}, want=400)
    assert "start_run" in no_run["message"]


@pytest.mark.parametrize("path", ["../../etc/passwd", "%2e%2e/%2e%2e/secret", "..%2fx"])
def test_logged_model_files_refuse_traversal(api: Api, path: str) -> None:
    logged = _logged_model(api, finalize=False)
    answer = api.client.put(f"{ARTIFACTS}/{logged['root']}/{path}", content=b"x", headers=api.headers())
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
