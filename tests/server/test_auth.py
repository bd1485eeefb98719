"""Bearer-token auth: who may call what, and what a refused caller is told."""

from __future__ import annotations

from .support import ADMIN_SECRET, API, Api


def test_health_needs_no_token(api: Api) -> None:
    response = api.client.get(f"{API}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_missing_token_is_401_with_how_to_fix(api: Api) -> None:
    response = api.client.get(f"{API}/experiments")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert "Authorization: Bearer" in error["message"]
    assert "loopml tokens create" in error["message"]


def test_unknown_token_is_401(api: Api) -> None:
    response = api.client.get(f"{API}/experiments", headers=api.headers("lml_nope_nope"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_non_bearer_scheme_is_401(api: Api) -> None:
    response = api.client.get(f"{API}/experiments", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401


def test_revoked_token_is_refused_at_once_through_this_server(api: Api) -> None:
    secret = api.token("viewer")
    assert api.client.get(f"{API}/experiments", headers=api.headers(secret)).status_code == 200
    token_id = next(
        t["id"]
        for t in api.client.get(f"{API}/tokens", headers=api.headers()).json()["tokens"]
        if t["name"] == "viewer-all"
    )
    revoked = api.client.delete(f"{API}/tokens/{token_id}", headers=api.headers())
    assert revoked.status_code == 200
    assert revoked.json()["token"]["revoked_at"] is not None
    assert api.client.get(f"{API}/experiments", headers=api.headers(secret)).status_code == 401


def test_viewer_reads_but_cannot_write(api: Api) -> None:
    experiment_id = api.experiment("exp")
    viewer = api.token("viewer")
    assert api.client.get(f"{API}/experiments/{experiment_id}", headers=api.headers(viewer)).status_code == 200
    response = api.client.post(f"{API}/runs", json={"experiment_id": experiment_id}, headers=api.headers(viewer))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert "editor" in error["message"]


def test_project_scoped_token_cannot_tell_a_foreign_run_from_a_missing_one(api: Api) -> None:
    foreign = api.run(api.experiment("b-exp", project="b"))
    scoped = api.token("editor", project="a")
    seen = api.client.get(f"{API}/runs/{foreign['id']}", headers=api.headers(scoped))
    missing_id = "0" * 32
    missing = api.client.get(f"{API}/runs/{missing_id}", headers=api.headers(scoped))
    assert seen.status_code == missing.status_code == 404
    assert seen.json()["error"]["code"] == missing.json()["error"]["code"] == "run_not_found"
    assert seen.json()["error"]["message"].replace(str(foreign["id"]), "X") == missing.json()["error"][
        "message"
    ].replace(missing_id, "X")
    # and it cannot write to it either
    response = api.client.post(
        f"{API}/runs/{foreign['id']}/tags", json={"tags": {"a": "b"}}, headers=api.headers(scoped)
    )
    assert response.status_code == 404


def test_admin_only_routes_refuse_an_editor(api: Api) -> None:
    editor = api.token("editor")
    for method, path, body in [
        ("GET", "/tokens", None),
        ("POST", "/tokens", {"name": "x", "role": "viewer"}),
        ("DELETE", "/tokens/abc", None),
        ("GET", "/audit", None),
        ("GET", "/audit/verify", None),
    ]:
        response = api.client.request(method, f"{API}{path}", json=body, headers=api.headers(editor))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "permission_denied"


def test_a_revoked_bootstrap_token_stays_revoked_when_the_server_starts_again(api: Api) -> None:
    other_admin = api.token("admin")
    admin_id = next(
        t["id"]
        for t in api.client.get(f"{API}/tokens", headers=api.headers(other_admin)).json()["tokens"]
        if t["name"] == "admin"
    )
    assert api.client.delete(f"{API}/tokens/{admin_id}", headers=api.headers(other_admin)).status_code == 200
    # what `loopml server` does at each start with the same LOOPML_ADMIN_TOKEN
    assert api.app.state.governance.bootstrap_admin(ADMIN_SECRET) is None
    api.app.state.principal_cache.clear()
    assert api.client.get(f"{API}/experiments", headers=api.headers()).status_code == 401
    names = [t["name"] for t in api.client.get(f"{API}/tokens", headers=api.headers(other_admin)).json()["tokens"]]
    assert names.count("admin") == 1
