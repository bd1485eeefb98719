"""Metric ingest (columnar, bounded) and history over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from .support import API, Api


def test_metrics_round_trip_with_nan_and_infinities(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    body = {
        "keys": ["loss", "loss", "loss", "loss", "acc"],
        "values": [0.5, "NaN", "Infinity", "-Infinity", 1],
        "steps": [0, 1, 2, 3, 0],
        "timestamps": [10, 11, 12, 13, 10],
    }
    response = api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 5}

    history = api.client.get(f"{API}/runs/{run_id}/metrics/loss", headers=api.headers()).json()["metrics"]
    assert [(m["value"], m["step"], m["timestamp"]) for m in history] == [
        (0.5, 0, 10),
        ("NaN", 1, 11),
        ("Infinity", 2, 12),
        ("-Infinity", 3, 13),
    ]
    run = api.client.get(f"{API}/runs/{run_id}", headers=api.headers()).json()["run"]
    assert run["metrics"] == {"loss": "-Infinity", "acc": 1.0}


def test_metric_keys_with_slashes(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    body = {"keys": ["val/loss"], "values": [0.25], "steps": [7], "timestamps": [1]}
    assert api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers()).status_code == 200
    history = api.client.get(f"{API}/runs/{run_id}/metrics/val/loss", headers=api.headers()).json()
    assert history == {"metrics": [{"key": "val/loss", "value": 0.25, "step": 7, "timestamp": 1}]}


def test_unequal_columns_are_400_naming_the_lengths(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    body = {"keys": ["a", "b"], "values": [1.0], "steps": [0, 1], "timestamps": [0, 1]}
    response = api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "keys=2" in error["message"]
    assert "values=1" in error["message"]


def test_wrong_metric_types_are_400_and_store_nothing(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/metrics"
    cases = [
        (
            {"keys": ["a", "a"], "values": [1.0, "one"], "steps": [0, 1], "timestamps": [0, 0]},
            "invalid_metric",
        ),
        ({"keys": ["a"], "values": [True], "steps": [0], "timestamps": [0]}, "invalid_metric"),
        ({"keys": ["a"], "values": [1.0], "steps": [0.5], "timestamps": [0]}, "invalid_metric"),
        ({"keys": ["a"], "values": [1.0], "steps": [0], "timestamps": [-1]}, "invalid_metric"),
        ({"keys": [1], "values": [1.0], "steps": [0], "timestamps": [0]}, "invalid_name"),
        ({"keys": ["a"], "values": [1.0], "steps": [0]}, "invalid_input"),
        ({"keys": ["a"], "values": [1.0], "steps": [0], "timestamps": [0], "x": 1}, "invalid_input"),
        ([1, 2, 3], "invalid_input"),
    ]
    for body, code in cases:
        response = api.client.post(url, json=body, headers=api.headers())
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == code, body
        assert response.json()["error"]["message"]
    assert api.client.get(f"{url}/a", headers=api.headers()).json() == {"metrics": []}


def test_malformed_json_is_400_invalid_json(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    headers = {**api.headers(), "Content-Type": "application/json"}
    response = api.client.post(f"{API}/runs/{run_id}/metrics", content=b'{"keys": [', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_oversize_body_is_413(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_request_bytes=1000)
    run_id = api.run(api.experiment())["id"]
    n = 200
    body = {"keys": ["k"] * n, "values": [1.0] * n, "steps": list(range(n)), "timestamps": [0] * n}
    response = api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers())
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "1000" in error["message"]

    def chunked() -> object:  # no Content-Length: the limit holds while reading
        yield orjson.dumps(body)

    response = api.client.post(
        f"{API}/runs/{run_id}/metrics",
        content=chunked(),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_too_many_points_is_413(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    n = 100_001
    body = {"keys": ["k"] * n, "values": [0] * n, "steps": [0] * n, "timestamps": [0] * n}
    response = api.client.post(f"{API}/runs/{run_id}/metrics", content=orjson.dumps(body), headers=api.headers())
    assert response.status_code == 413
    assert "100000" in response.json()["error"]["message"]


def test_viewer_cannot_log_metrics(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    viewer = api.token("viewer")
    body = {"keys": ["a"], "values": [1.0], "steps": [0], "timestamps": [0]}
    response = api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers(viewer))
    assert response.status_code == 403


def test_a_batch_sent_again_under_its_idempotency_key_is_stored_once(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/metrics"
    body = {"keys": ["loss", "loss"], "values": [0.5, 0.4], "steps": [0, 1], "timestamps": [10, 11]}
    keyed = api.headers() | {"Idempotency-Key": "batch-1"}
    for _ in range(3):  # the answer of the first was lost: the client sends it again, twice
        response = api.client.post(url, json=body, headers=keyed)
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": 2}
    other = api.headers() | {"Idempotency-Key": "batch-2"}
    assert api.client.post(url, json=body | {"steps": [2, 3]}, headers=other).json() == {"stored": 2}
    history = api.client.get(f"{url}/loss", headers=api.headers()).json()["metrics"]
    assert [m["step"] for m in history] == [0, 1, 2, 3]
    events = api.client.get(f"{API}/audit", params={"limit": 1000}, headers=api.headers()).json()["events"]
    assert [e["action"] for e in events].count("run.log_metrics") == 2  # a replay changes nothing


def test_an_idempotency_key_is_checked(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/metrics"
    body = {"keys": ["loss"], "values": [0.5], "steps": [0], "timestamps": [10]}
    bad = api.client.post(url, json=body, headers=api.headers() | {"Idempotency-Key": "has space"})
    assert bad.status_code == 400
    assert "batch key" in bad.json()["error"]["message"]
    assert api.client.post(url, json=body, headers=api.headers() | {"Idempotency-Key": "k"}).status_code == 200
    reused = body | {"keys": ["loss", "loss"], "values": [1.0, 2.0], "steps": [1, 2], "timestamps": [1, 2]}
    conflict = api.client.post(url, json=reused, headers=api.headers() | {"Idempotency-Key": "k"})
    assert conflict.status_code == 400
    assert conflict.json()["error"]["code"] == "already_exists"
    assert "already used for a batch of 1 points" in conflict.json()["error"]["message"]
    assert len(api.client.get(f"{url}/loss", headers=api.headers()).json()["metrics"]) == 1
