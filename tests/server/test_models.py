"""The model registry over HTTP: models, versions, aliases, search and resolve; and the 4xx answers."""

from __future__ import annotations

import hashlib

import pytest

from .support import API, Api

MANIFEST = b'{"flavor": "sklearn"}'
DIGEST = hashlib.sha256(MANIFEST).hexdigest()


def _logged_model(api: Api, project: str | None = None) -> str:
    """A run (in `project`) that logged a model package under `model/`; returns its id."""
    run_id = str(api.run(api.experiment(project=project))["id"])
    response = api.client.put(
        f"{API}/runs/{run_id}/artifacts/model/loopml-model.json", content=MANIFEST, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    return run_id


def _version(api: Api, run_id: str, name: str = "bike", **fields: object) -> dict[str, object]:
    body = {"run_id": run_id, "artifact_path": "model", "manifest_digest": DIGEST, "flavor": "sklearn", **fields}
    response = api.client.post(f"{API}/models/{name}/versions", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    version: dict[str, object] = response.json()["model_version"]
    return version


def test_model_version_and_alias_lifecycle(api: Api) -> None:
    created = api.client.post(
        f"{API}/models", json={"name": "bike", "description": "demand", "tags": {"team": "ds"}}, headers=api.headers()
    )
    assert created.status_code == 200, created.text
    model = created.json()["model"]
    assert (model["name"], model["project"], model["latest_version"], model["aliases"]) == ("bike", "default", None, {})
    run_id = _logged_model(api)
    first = _version(api, run_id, signature={"inputs": [{"name": "hour", "type": "long"}]}, tags={"stage": "a"})
    assert (first["version"], first["status"], first["run_id"]) == (1, "READY", run_id)
    assert first["signature"] == {"inputs": [{"name": "hour", "type": "long"}]}
    assert _version(api, run_id)["version"] == 2

    moved = api.client.put(
        f"{API}/models/bike/aliases/champion", json={"version": 1, "reason": "baseline"}, headers=api.headers()
    )
    assert moved.status_code == 200 and moved.json()["model_version"]["aliases"] == ["champion"]
    got = api.client.get(f"{API}/models/bike/aliases/champion", headers=api.headers()).json()["model_version"]
    assert got["version"] == 1
    resolved = api.client.get(
        f"{API}/model-versions/resolve", params={"uri": "models:/bike@latest"}, headers=api.headers()
    )
    assert resolved.json()["model_version"]["version"] == 2
    by_name = api.client.get(
        f"{API}/model-versions/resolve", params={"uri": "bike", "alias_or_version": "champion"}, headers=api.headers()
    )
    assert by_name.json()["model_version"]["version"] == 1

    patched = api.client.patch(
        f"{API}/models/bike/versions/2", json={"status": "ARCHIVED", "tags": {"why": "worse"}}, headers=api.headers()
    ).json()["model_version"]
    assert patched["status"] == "ARCHIVED" and patched["tags"] == {"why": "worse"}
    model = api.client.patch(f"{API}/models/bike", json={"description": "v2"}, headers=api.headers()).json()["model"]
    assert model["description"] == "v2" and model["aliases"] == {"champion": 1} and model["latest_version"] == 2

    listed = api.client.get(f"{API}/models/bike/versions", headers=api.headers()).json()
    assert [v["version"] for v in listed["model_versions"]] == [2, 1] and listed["next_page_token"] is None
    ready = api.client.get(
        f"{API}/models/bike/versions", params={"filter": "attributes.status = 'READY'"}, headers=api.headers()
    ).json()
    assert [v["version"] for v in ready["model_versions"]] == [1]
    searched = api.client.post(
        f"{API}/model-versions/search",
        json={"filter": "tags.stage = 'a'", "order_by": ["attributes.version DESC"]},
        headers=api.headers(),
    ).json()
    assert [(v["name"], v["version"]) for v in searched["model_versions"]] == [("bike", 1)]
    models = api.client.get(
        f"{API}/models", params={"filter": "tags.team = 'ds'", "order_by": ["attributes.name"]}, headers=api.headers()
    ).json()
    assert [m["name"] for m in models["models"]] == ["bike"]

    deleted = api.client.delete(
        f"{API}/models/bike/aliases/champion", params={"reason": "rollback"}, headers=api.headers()
    )
    assert deleted.json() == {"deleted": {"name": "bike", "alias": "champion", "version": 1}}
    events = api.client.get(f"{API}/audit", headers=api.headers()).json()["events"]
    moves = [(e["action"], e["after"]) for e in events if "alias" in e["action"]]
    assert moves == [
        ("model.set_alias", {"alias": "champion", "version": 1, "reason": "baseline"}),
        ("model.delete_alias", {"alias": "champion", "version": None, "reason": "rollback"}),
    ]


def test_create_with_exist_ok_is_get_or_create(api: Api) -> None:
    first = api.client.post(f"{API}/models", json={"name": "m"}, headers=api.headers())
    again = api.client.post(f"{API}/models", json={"name": "m"}, headers=api.headers())
    assert again.status_code == 400 and again.json()["error"]["code"] == "already_exists"
    same = api.client.post(f"{API}/models", json={"name": "m", "exist_ok": True}, headers=api.headers())
    assert same.status_code == 200 and same.json() == first.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/models/nope", None, 404, "model_not_found"),
        ("GET", "/models/bike/versions/7", None, 404, "model_version_not_found"),
        ("GET", "/models/bike/versions/0", None, 400, "invalid_request"),
        ("GET", "/models/bike/aliases/champion", None, 404, "alias_not_found"),
        ("GET", "/models/bike/aliases/Champion", None, 400, "invalid_name"),
        ("GET", "/model-versions/resolve?uri=models:/bike", None, 400, "invalid_input"),
        ("GET", "/models?filter=params.x%20%3D%20'1'", None, 400, "invalid_filter"),
        ("POST", "/models", {"name": "a@b"}, 400, "invalid_name"),
        ("POST", "/models", {"name": "x", "stage": "Production"}, 400, "invalid_request"),
        ("PUT", "/models/bike/aliases/latest", {"version": 1}, 400, "invalid_name"),
        ("PUT", "/models/bike/aliases/champion", {"version": 9}, 404, "model_version_not_found"),
        ("PATCH", "/models/bike/versions/1", {"status": "Staging"}, 400, "invalid_request"),
        ("POST", "/model-versions/search", {"filter": "metrics.x = 'a'"}, 400, "invalid_filter"),
    ],
)
def test_mistakes_are_4xx_with_a_stable_code(
    api: Api, method: str, path: str, body: object, status: int, code: str
) -> None:
    api.client.post(f"{API}/models", json={"name": "bike"}, headers=api.headers())
    _version(api, _logged_model(api))
    response = api.client.request(method, API + path, json=body, headers=api.headers())
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_version_cannot_come_from_a_path_on_the_server(api: Api) -> None:
    api.client.post(f"{API}/models", json={"name": "bike"}, headers=api.headers())
    run_id = _logged_model(api)
    for path in ("/etc", "../../etc", "file:///etc", "model/../../x"):
        body = {"run_id": run_id, "artifact_path": path, "manifest_digest": DIGEST, "flavor": "sklearn"}
        response = api.client.post(f"{API}/models/bike/versions", json=body, headers=api.headers())
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "invalid_path"
    body = {"run_id": run_id, "artifact_path": "other", "manifest_digest": DIGEST, "flavor": "sklearn"}
    response = api.client.post(f"{API}/models/bike/versions", json=body, headers=api.headers())
    assert response.status_code == 400 and "no logged model" in response.json()["error"]["message"]
    body = {"run_id": run_id, "artifact_path": "model", "manifest_digest": DIGEST, "flavor": "x", "uri": "/etc"}
    response = api.client.post(f"{API}/models/bike/versions", json=body, headers=api.headers())
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_roles_and_project_scope(api: Api) -> None:
    api.client.post(f"{API}/models", json={"name": "bike"}, headers=api.headers())
    _version(api, _logged_model(api))
    viewer = api.headers(api.token("viewer"))
    assert api.client.get(f"{API}/models/bike", headers=viewer).status_code == 200
    denied = api.client.put(f"{API}/models/bike/aliases/champion", json={"version": 1}, headers=viewer)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert api.client.post(f"{API}/models", json={"name": "v"}, headers=viewer).status_code == 403
    outsider = api.headers(api.token("editor", project="other"))
    assert api.client.get(f"{API}/models/bike", headers=outsider).status_code == 404
    assert api.client.get(f"{API}/models/bike/versions/1", headers=outsider).status_code == 404
    assert api.client.get(f"{API}/models", headers=outsider).json()["models"] == []
    assert api.client.get(f"{API}/models").status_code == 401
