"""Tokens and the audit trail over HTTP."""

from __future__ import annotations

from .support import API, Api


def test_token_create_list_revoke(api: Api) -> None:
    response = api.client.post(
        f"{API}/tokens", json={"name": "ci", "role": "editor", "project": "churn"}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["secret"].startswith("lml_")
    token = created["token"]
    assert (token["name"], token["role"], token["project"], token["revoked_at"]) == (
        "ci",
        "editor",
        "churn",
        None,
    )
    assert "secret" not in token

    listed = api.client.get(f"{API}/tokens", headers=api.headers()).json()["tokens"]
    assert token in listed
    assert all("secret" not in t for t in listed)

    # the new token works, within its project
    headers = api.headers(created["secret"])
    assert (
        api.client.post(f"{API}/experiments", json={"name": "e", "project": "churn"}, headers=headers).status_code
        == 200
    )
    assert (
        api.client.post(f"{API}/experiments", json={"name": "e", "project": "other"}, headers=headers).status_code
        == 403
    )

    revoked = api.client.delete(f"{API}/tokens/{token['id']}", headers=api.headers()).json()["token"]
    assert revoked["revoked_at"] is not None
    assert api.client.get(f"{API}/experiments", headers=headers).status_code == 401


def test_unknown_token_id_is_404_and_bad_role_is_400(api: Api) -> None:
    for token_id in ["doesnotexist", "a%00b", "..%2f"]:
        response = api.client.delete(f"{API}/tokens/{token_id}", headers=api.headers())
        assert response.status_code == 404, token_id
        assert response.json()["error"]["code"] in ("token_not_found", "not_found")
    response = api.client.post(f"{API}/tokens", json={"name": "x", "role": "root"}, headers=api.headers())
    assert response.status_code == 400
    assert "role" in response.json()["error"]["message"]


def test_audit_records_mutations_and_verifies(api: Api) -> None:
    experiment_id = api.experiment()
    run_id = api.run(experiment_id, params={"a": "1"})["id"]
    api.client.post(f"{API}/runs/{run_id}/tags", json={"tags": {"t": "1"}}, headers=api.headers())
    api.client.post(
        f"{API}/runs/{run_id}/metrics",
        json={"keys": ["m"], "values": [1.0], "steps": [0], "timestamps": [0]},
        headers=api.headers(),
    )
    api.client.put(f"{API}/runs/{run_id}/artifacts/a.txt", content=b"a", headers=api.headers())
    api.client.patch(f"{API}/runs/{run_id}", json={"status": "FINISHED"}, headers=api.headers())
    api.token("viewer")

    events = api.client.get(f"{API}/audit", headers=api.headers()).json()["events"]
    actions = [e["action"] for e in events]
    assert "run.log_metrics" in actions
    assert "token.create" in actions
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(e["actor"] in ("system", "token:admin") for e in events)

    later = api.client.get(f"{API}/audit", params={"after_seq": events[1]["seq"], "limit": 2}, headers=api.headers())
    assert [e["seq"] for e in later.json()["events"]] == [e["seq"] for e in events[2:4]]

    verify = api.client.get(f"{API}/audit/verify", headers=api.headers()).json()
    assert verify == {"ok": True, "problems": []}


def test_audit_limit_out_of_range_is_400(api: Api) -> None:
    response = api.client.get(f"{API}/audit", params={"limit": 0}, headers=api.headers())
    assert response.status_code == 400
    assert "limit" in response.json()["error"]["message"]


def test_a_project_admin_cannot_touch_the_global_admin_token_or_other_projects_tokens(api: Api) -> None:
    project_admin = api.headers(api.token("admin", "churn", name="churn-admin"))
    api.token("viewer", "fraud", name="fraud-viewer")
    own = api.token("viewer", "churn", name="churn-viewer")
    every = {t["name"]: t["id"] for t in api.client.get(f"{API}/tokens", headers=api.headers()).json()["tokens"]}

    listed = api.client.get(f"{API}/tokens", headers=project_admin).json()["tokens"]
    assert sorted(t["name"] for t in listed) == ["churn-admin", "churn-viewer"]
    for foreign in ("admin", "fraud-viewer"):
        response = api.client.delete(f"{API}/tokens/{every[foreign]}", headers=project_admin)
        assert response.status_code == 404, foreign
        assert response.json()["error"]["code"] == "token_not_found"
    assert api.client.get(f"{API}/tokens", headers=api.headers()).status_code == 200  # the global admin still works

    revoked = api.client.delete(f"{API}/tokens/{every['churn-viewer']}", headers=project_admin)
    assert revoked.status_code == 200
    assert api.client.get(f"{API}/experiments", headers=api.headers(own)).status_code == 401


def test_a_project_admin_reads_only_its_projects_audit_rows_and_cannot_verify_the_chain(api: Api) -> None:
    churn_run = api.run(api.experiment("e", "churn"))["id"]
    fraud_run = api.run(api.experiment("e", "fraud"))["id"]
    project_admin = api.headers(api.token("admin", "churn"))

    events = api.client.get(f"{API}/audit", headers=project_admin).json()["events"]
    entities = {e["entity_id"] for e in events}
    assert churn_run in entities
    assert fraud_run not in entities
    assert all(e["action"] != "token.create" or e["after"]["project"] == "churn" for e in events)
    everything = api.client.get(f"{API}/audit", headers=api.headers()).json()["events"]
    assert {churn_run, fraud_run} <= {e["entity_id"] for e in everything}

    refused = api.client.get(f"{API}/audit/verify", headers=project_admin)
    assert refused.status_code == 403
    assert "global admin" in refused.json()["error"]["message"]
    assert api.client.get(f"{API}/audit/verify", headers=api.headers()).json() == {"ok": True, "problems": []}
