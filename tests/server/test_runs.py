"""Experiments and runs over HTTP: happy paths, write-once params, search."""

from __future__ import annotations

from .support import API, Api


def test_experiment_get_or_create_is_idempotent_and_listed(api: Api) -> None:
    first = api.client.post(f"{API}/experiments", json={"name": "churn"}, headers=api.headers()).json()
    again = api.client.post(f"{API}/experiments", json={"name": "churn", "project": None}, headers=api.headers()).json()
    assert first == again
    experiment = first["experiment"]
    assert experiment["project"] == "default"
    assert set(experiment) == {"id", "project", "name", "created_at", "deleted_at", "updated_at", "tags"}

    got = api.client.get(f"{API}/experiments/{experiment['id']}", headers=api.headers()).json()
    assert got == {"experiment": experiment}
    listed = api.client.get(f"{API}/experiments", params={"project": "default"}, headers=api.headers()).json()
    assert listed == {"experiments": [experiment]}


def test_experiment_lookup_by_name_returns_at_most_one(api: Api) -> None:
    api.experiment("a")
    b = api.experiment("b")
    found = api.client.get(
        f"{API}/experiments", params={"project": "default", "name": "b"}, headers=api.headers()
    ).json()
    assert [e["id"] for e in found["experiments"]] == [b]
    none = api.client.get(
        f"{API}/experiments", params={"project": "default", "name": "zzz"}, headers=api.headers()
    ).json()
    assert none == {"experiments": []}


def test_unknown_experiment_is_404(api: Api) -> None:
    response = api.client.get(f"{API}/experiments/999999", headers=api.headers())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "experiment_not_found"


def test_run_lifecycle(api: Api) -> None:
    experiment_id = api.experiment()
    run = api.run(experiment_id, name="r1", params={"lr": "0.1"}, tags={"team": "ml"}, start_time=1_700_000_000_000)
    assert run["status"] == "RUNNING"
    assert run["params"] == {"lr": "0.1"}
    assert run["tags"] == {"team": "ml"}
    assert run["start_time"] == 1_700_000_000_000
    run_id = run["id"]

    child = api.run(experiment_id, parent_run_id=run_id)
    assert child["parent_run_id"] == run_id

    logged = api.client.post(
        f"{API}/runs/{run_id}/params", json={"params": {"depth": "3", "lr": "0.1"}}, headers=api.headers()
    )
    assert logged.json() == {"logged": 2}
    tagged = api.client.post(f"{API}/runs/{run_id}/tags", json={"tags": {"team": "ds"}}, headers=api.headers())
    assert tagged.json() == {"logged": 1}

    ended = api.client.patch(
        f"{API}/runs/{run_id}",
        json={"status": "FINISHED", "end_time": 1_700_000_001_000},
        headers=api.headers(),
    ).json()["run"]
    assert ended["status"] == "FINISHED"
    assert ended["end_time"] == 1_700_000_001_000

    got = api.client.get(f"{API}/runs/{run_id}", headers=api.headers()).json()["run"]
    assert got["params"] == {"lr": "0.1", "depth": "3"}
    assert got["tags"] == {"team": "ds"}
    assert got["status"] == "FINISHED"


def test_param_is_write_once(api: Api) -> None:
    run_id = api.run(api.experiment(), params={"lr": "0.1"})["id"]
    response = api.client.post(f"{API}/runs/{run_id}/params", json={"params": {"lr": "0.2"}}, headers=api.headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "param_conflict"
    assert "lr" in error["message"]


def test_bad_status_is_400_naming_the_field(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    response = api.client.patch(f"{API}/runs/{run_id}", json={"status": "DONE"}, headers=api.headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "status" in error["message"]


def test_unknown_run_is_404(api: Api) -> None:
    for run_id in ["0" * 32, "not-a-run"]:
        response = api.client.get(f"{API}/runs/{run_id}", headers=api.headers())
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "run_not_found"


def test_search_filters_orders_and_pages(api: Api) -> None:
    experiment_id = api.experiment()
    for i in range(5):
        api.run(experiment_id, name=f"r{i}", params={"i": str(i)}, tags={"kind": "even" if i % 2 == 0 else "odd"})
    url = f"{API}/runs/search"
    body = {
        "experiment_ids": [experiment_id],
        "filter": "tags.kind = 'even'",
        "order_by": ["attributes.run_name DESC"],
    }
    found = api.client.post(url, json=body, headers=api.headers()).json()
    assert [r["name"] for r in found["runs"]] == ["r4", "r2", "r0"]
    assert found["next_page_token"] is None

    names: list[str] = []
    token = None
    while True:
        page = api.client.post(
            url,
            json={
                "experiment_ids": [experiment_id],
                "order_by": ["attributes.run_name"],
                "max_results": 2,
                "page_token": token,
            },
            headers=api.headers(),
        ).json()
        names += [r["name"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert names == ["r0", "r1", "r2", "r3", "r4"]


def test_search_with_a_bad_filter_is_400(api: Api) -> None:
    experiment_id = api.experiment()
    response = api.client.post(
        f"{API}/runs/search",
        json={"experiment_ids": [experiment_id], "filter": "params.x ==="},
        headers=api.headers(),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"
