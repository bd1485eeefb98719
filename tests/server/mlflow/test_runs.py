"""MLflow's run endpoints, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from ..support import Api
from .support import call, error, experiment, run, send


def _tags(run_json: dict[str, object]) -> dict[str, str]:
    data = run_json["data"]
    assert isinstance(data, dict)
    return {t["key"]: t["value"] for t in data.get("tags", [])}


def test_a_run_logged_through_mlflow_is_a_loopml_run(api: Api) -> None:
    experiment_id = experiment(api)
    created = run(
        api,
        experiment_id,
        run_name="first",
        start_time=1000,
        user_id="ann",
        tags=[{"key": "team", "value": "risk"}],
    )
    run_id = created["info"]["run_id"]
    assert created["info"]["run_uuid"] == run_id and len(run_id) == 32
    assert created["info"]["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    call(api, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    call(api, "POST", "/runs/log-metric", {"run_id": run_id, "key": "acc", "value": 0.9, "timestamp": 5, "step": 2})
    call(api, "POST", "/runs/log-metric", {"run_uuid": run_id, "key": "acc", "value": "NaN", "timestamp": "6"})
    call(api, "POST", "/runs/set-tag", {"run_id": run_id, "key": "stage", "value": "dev"})
    call(api, "POST", "/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 2000})

    got = call(api, "GET", "/runs/get", {"run_id": run_id})["run"]
    assert got["info"]["status"] == "FINISHED" and got["info"]["end_time"] == 2000
    assert got["info"]["user_id"] == "ann" and got["info"]["run_name"] == "first"
    assert got["data"]["params"] == [{"key": "lr", "value": "0.01"}]
    assert got["data"]["metrics"] == [{"key": "acc", "value": 0.9, "timestamp": 5, "step": 2}]
    assert _tags(got) == {"team": "risk", "stage": "dev", "mlflow.user": "ann", "mlflow.runName": "first"}
    history = call(api, "GET", "/metrics/get-history", {"run_id": run_id, "metric_key": "acc"})["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(0, "NaN"), (2, 0.9)]

    native = api.client.get(f"/api/v1/runs/{run_id}", headers=api.headers()).json()["run"]
    assert native["params"] == {"lr": "0.01"} and native["status"] == "FINISHED"
    assert native["experiment_id"] == int(experiment_id)


def test_nested_runs_and_renames_through_tags(api: Api) -> None:
    experiment_id = experiment(api)
    parent = run(api, experiment_id)["info"]["run_id"]
    child = run(api, experiment_id, tags=[{"key": "mlflow.parentRunId", "value": parent}])["info"]["run_id"]
    native = api.client.get(f"/api/v1/runs/{child}", headers=api.headers()).json()["run"]
    assert native["parent_run_id"] == parent
    call(api, "POST", "/runs/set-tag", {"run_id": child, "key": "mlflow.runName", "value": "renamed"})
    got = call(api, "GET", "/runs/get", {"run_id": child})["run"]
    assert got["info"]["run_name"] == "renamed"
    assert _tags(got)["mlflow.parentRunId"] == parent
    children = call(
        api,
        "POST",
        "/runs/search",
        {"experiment_ids": [experiment_id], "filter": f"tags.mlflow.parentRunId = '{parent}'"},
    )["runs"]
    assert [r["info"]["run_id"] for r in children] == [child]


def test_params_are_write_once_and_missing_things_are_mlflow_errors(api: Api) -> None:
    run_id = run(api, experiment(api))["info"]["run_id"]
    call(api, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})
    call(api, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})  # same value: fine
    changed = send(api, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert error(changed) == (400, "INVALID_PARAMETER_VALUE")
    missing = send(api, "GET", "/runs/get", {"run_id": "0" * 32})
    assert error(missing) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error(send(api, "GET", "/runs/get", {})) == (400, "INVALID_PARAMETER_VALUE")
    no_tag = send(api, "POST", "/runs/delete-tag", {"run_id": run_id, "key": "never"})
    assert error(no_tag) == (404, "RESOURCE_DOES_NOT_EXIST")
    bad_metric = send(api, "POST", "/runs/log-metric", {"run_id": run_id, "key": "m", "value": "high", "timestamp": 1})
    assert error(bad_metric) == (400, "INVALID_PARAMETER_VALUE")
    bad_status = send(api, "POST", "/runs/update", {"run_id": run_id, "status": "DONE"})
    assert error(bad_status) == (400, "INVALID_PARAMETER_VALUE")
    no_experiment = send(api, "POST", "/runs/create", {"experiment_id": "4242"})
    assert error(no_experiment) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_log_batch_at_and_over_mlflow_limits(api: Api) -> None:
    run_id = run(api, experiment(api))["info"]["run_id"]
    metrics = [{"key": f"m{i % 10}", "value": i, "timestamp": i, "step": i} for i in range(1000)]
    call(api, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    params = [{"key": f"p{i}", "value": str(i)} for i in range(100)]
    tags = [{"key": f"t{i}", "value": str(i)} for i in range(100)]
    call(api, "POST", "/runs/log-batch", {"run_id": run_id, "params": params, "tags": tags})
    got = call(api, "GET", "/runs/get", {"run_id": run_id})["run"]
    assert len(got["data"]["params"]) == 100
    assert len(got["data"]["metrics"]) == 10
    history = call(api, "GET", "/metrics/get-history", {"run_id": run_id, "metric_key": "m3"})["metrics"]
    assert len(history) == 100

    over = [
        {"metrics": [*metrics, metrics[0]]},
        {"params": [*params, {"key": "extra", "value": "x"}]},
        {"tags": [*tags, {"key": "extra", "value": "x"}]},
        {"metrics": metrics[:950], "params": params[:60]},
    ]
    for body in over:
        refused = send(api, "POST", "/runs/log-batch", {"run_id": run_id, **body})
        assert error(refused) == (400, "INVALID_PARAMETER_VALUE"), body.keys()
    # a refused batch stores nothing: params of an atomic batch with one conflicting value are all left out
    conflict = [{"key": "fresh", "value": "1"}, {"key": "p0", "value": "changed"}]
    assert error(send(api, "POST", "/runs/log-batch", {"run_id": run_id, "params": conflict}))[0] == 400
    keys = {p["key"] for p in call(api, "GET", "/runs/get", {"run_id": run_id})["run"]["data"]["params"]}
    assert "fresh" not in keys


def test_delete_and_restore_runs(api: Api) -> None:
    experiment_id = experiment(api)
    kept = run(api, experiment_id)["info"]["run_id"]
    gone = run(api, experiment_id)["info"]["run_id"]
    call(api, "POST", "/runs/delete", {"run_id": gone})

    def search(view: str | None = None) -> list[str]:
        body: dict[str, object] = {"experiment_ids": [experiment_id]}
        if view:
            body["run_view_type"] = view
        return sorted(r["info"]["run_id"] for r in call(api, "POST", "/runs/search", body).get("runs", []))

    assert search() == [kept]
    assert search("DELETED_ONLY") == [gone]
    assert search("ALL") == sorted([kept, gone])
    assert call(api, "GET", "/runs/get", {"run_id": gone})["run"]["info"]["lifecycle_stage"] == "deleted"
    refused = send(api, "POST", "/runs/log-metric", {"run_id": gone, "key": "m", "value": 1, "timestamp": 1})
    assert error(refused) == (400, "INVALID_PARAMETER_VALUE")
    native = api.client.post(
        "/api/v1/runs/search", json={"experiment_ids": [int(experiment_id)]}, headers=api.headers()
    )
    assert [r["id"] for r in native.json()["runs"]] == [kept]

    call(api, "POST", "/runs/restore", {"run_id": gone})
    assert search() == sorted([kept, gone])
    events = api.client.get("/api/v1/audit", headers=api.headers()).json()["events"]
    assert [e["action"] for e in events if e["entity_id"] == gone][-2:] == ["run.delete", "run.restore"]
    assert api.client.get("/api/v1/audit/verify", headers=api.headers()).json()["problems"] == []
    assert (
        error(send(api, "POST", "/runs/search", {"experiment_ids": [experiment_id], "run_view_type": "NONE"}))[0] == 400
    )


def test_search_filters_orders_and_pages(api: Api) -> None:
    experiment_id = experiment(api)
    ids = []
    for i in range(7):
        run_id = run(api, experiment_id, run_name=f"r{i}", start_time=1000 + i)["info"]["run_id"]
        call(api, "POST", "/runs/log-metric", {"run_id": run_id, "key": "acc", "value": i / 10, "timestamp": 1})
        call(api, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "depth", "value": str(i % 2)})
        ids.append(run_id)
    body = {
        "experiment_ids": [experiment_id],
        "filter": "metrics.acc > 0.15 and params.depth = '1'",
        "order_by": ["metrics.acc DESC"],
    }
    found = [r["info"]["run_name"] for r in call(api, "POST", "/runs/search", body)["runs"]]
    assert found == ["r5", "r3"]

    seen: list[str] = []
    token = None
    while True:
        page_body: dict[str, object] = {"experiment_ids": [experiment_id], "max_results": 3, "order_by": ["start_time"]}
        if token:
            page_body["page_token"] = token
        page = call(api, "POST", "/runs/search", page_body)
        seen += [r["info"]["run_id"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ids
    by_created = call(
        api, "POST", "/runs/search", {"experiment_ids": [experiment_id], "filter": "attributes.created >= 1005"}
    )["runs"]
    assert sorted(r["info"]["run_name"] for r in by_created) == ["r5", "r6"]

    for bad in ("metrics.acc >", "metrics.acc > 1 or metrics.acc < 0", "attributes.artifact_uri = 'x'"):
        refused = send(api, "POST", "/runs/search", {"experiment_ids": [experiment_id], "filter": bad})
        assert error(refused) == (400, "INVALID_PARAMETER_VALUE"), bad
    assert error(send(api, "POST", "/runs/search", {"experiment_ids": [experiment_id], "page_token": "nope"}))[0] == 400


def test_metric_history_pages_and_bulk_interval(api: Api) -> None:
    experiment_id = experiment(api)
    runs = [run(api, experiment_id)["info"]["run_id"] for _ in range(2)]
    for run_id in runs:
        metrics = [{"key": "loss", "value": 1 / (s + 1), "timestamp": s, "step": s} for s in range(50)]
        call(api, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    first = call(api, "GET", "/metrics/get-history", {"run_id": runs[0], "metric_key": "loss", "max_results": 20})
    assert [m["step"] for m in first["metrics"]] == list(range(20))
    rest = call(
        api,
        "GET",
        "/metrics/get-history",
        {"run_id": runs[0], "metric_key": "loss", "max_results": 40, "page_token": first["next_page_token"]},
    )
    assert [m["step"] for m in rest["metrics"]] == list(range(20, 50)) and "next_page_token" not in rest
    bulk = call(
        api,
        "GET",
        "/metrics/get-history-bulk-interval",
        {"run_ids": runs, "metric_key": "loss", "start_step": 10, "end_step": 30, "max_results": 5},
    )["metrics"]
    for run_id in runs:
        steps = [m["step"] for m in bulk if m["run_id"] == run_id]
        assert steps[0] == 10 and steps[-1] == 30 and len(steps) == 5
    assert math.isclose(bulk[0]["value"], 1 / 11)


def test_inputs_and_outputs(api: Api) -> None:
    run_id = run(api, experiment(api))["info"]["run_id"]
    dataset = {
        "name": "hour",
        "digest": "abc123",
        "source_type": "local",
        "source": "hour.csv",
        "schema": '{"mlflow_colspec": [{"type": "double", "name": "temp"}]}',
        "profile": '{"num_rows": 17}',
    }
    entry = {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "train"}]}
    call(api, "POST", "/runs/log-inputs", {"run_id": run_id, "datasets": [entry], "models": [{"model_id": "m-1"}]})
    call(api, "POST", "/runs/outputs", {"run_id": run_id, "models": [{"model_id": "m-2", "step": 3}]})
    got = call(api, "GET", "/runs/get", {"run_id": run_id})["run"]
    logged = got["inputs"]["dataset_inputs"][0]
    assert logged["dataset"]["name"] == "hour" and logged["dataset"]["source"] == "hour.csv"
    assert logged["tags"] == [{"key": "mlflow.data.context", "value": "training"}]
    assert got["inputs"]["model_inputs"] == [{"model_id": "m-1"}]
    assert got["outputs"]["model_outputs"] == [{"model_id": "m-2", "step": 3}]
    assert not any(key.startswith("loopml.") for key in _tags(got))
    native = api.client.get(f"/api/v1/runs/{run_id}/datasets", headers=api.headers()).json()["datasets"]
    assert native[0]["rows"] == 17 and native[0]["role"] == "training"
