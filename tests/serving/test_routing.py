"""Traffic splitting: weights, sticky keys (one key, one version), and shadows that never change the answer."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from starlette.testclient import TestClient

from loopml.serving import BatchingConfig

from .support import MemorySink, Packages, deployment, make_app, version, wait_until

URL = "/v1/deployments/bike/predict"


def test_sticky_key_header_always_meets_the_same_version(packages: Packages) -> None:
    spec = deployment(version(packages, 1, weight=50), version(packages, 2, weight=50, role="canary"))
    app, _ = make_app(spec)
    body = {"records": packages.records(1)}
    with TestClient(app) as client:
        for key in ("user-1", "user-2", "user-3"):
            seen = {
                client.post(URL, json=body, headers={"X-Loopml-Key": key}).headers["x-loopml-model-version"]
                for _ in range(200 // 3)
            }
            assert len(seen) == 1, (key, seen)
        split = Counter(
            client.post(URL, json=body, headers={"X-Loopml-Key": f"k{i}"}).headers["x-loopml-model-version"]
            for i in range(400)
        )
    assert set(split) == {"bike/1", "bike/2"}
    assert 0.35 < split["bike/2"] / 400 < 0.65  # crc32 of random keys spreads like the weights (50/50)


def test_sticky_key_field_routes_by_the_request_value(packages: Packages) -> None:
    spec = deployment(version(packages, 1, weight=30), version(packages, 2, weight=70), sticky_key="user_id")
    app, _ = make_app(spec)
    row = packages.records(1)[0]
    with TestClient(app) as client:
        by_user = {}
        for user in range(20):
            answers = {
                client.post(URL, json={"records": [{**row, "user_id": f"u{user}"}]}).headers["x-loopml-model-version"]
                for _ in range(10)
            }
            assert len(answers) == 1
            by_user[user] = answers.pop()
        # OIP and /invocations read the same field
        oip = {
            "parameters": {"user_id": "u3"},
            "inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [float(v)]} for k, v in row.items()],
        }
        assert client.post("/v2/models/bike/infer", json=oip).headers["x-loopml-model-version"] == by_user[3]
        mlflow = {"dataframe_records": [{**row, "user_id": "u5"}]}
        assert client.post("/invocations", json=mlflow).headers["x-loopml-model-version"] == by_user[5]
    assert len(set(by_user.values())) == 2


def test_random_split_follows_the_weights(packages: Packages) -> None:
    spec = deployment(version(packages, 1, weight=90), version(packages, 2, weight=10, role="canary"))
    app, _ = make_app(spec)
    body = {"records": packages.records(1)}
    with TestClient(app) as client:
        split = Counter(client.post(URL, json=body).headers["x-loopml-model-version"] for _ in range(400))
    assert 0.02 < split["bike/2"] / 400 < 0.2
    # and each answer is the answering version's own prediction
    with TestClient(app) as client:
        response = client.post(URL, json=body)
        number = int(response.headers["x-loopml-model-version"].split("/")[1])
        assert response.json()["predictions"] == packages.expected(number, body["records"])


def test_shadow_gets_a_copy_and_never_the_answer(packages: Packages) -> None:
    sink = MemorySink()
    spec = deployment(version(packages, 1), version(packages, 2, role="shadow"))
    app, _ = make_app(spec, sink=sink)
    records = packages.records(3)
    with TestClient(app) as client:
        for _ in range(5):
            response = client.post(URL, json={"records": records}, headers={"X-Request-Id": "shadowed-1"})
            assert response.headers["x-loopml-model-version"] == "bike/1"
            assert response.json()["predictions"] == packages.expected(1, records)
        wait_until(lambda: sum(r.role == "shadow" for r in sink.records) == 5)
        time.sleep(0.05)
        assert not sink.closed
    assert sink.closed  # the app's shutdown closes its request log
    live = [r for r in sink.records if r.role == "stable"]
    shadow = [r for r in sink.records if r.role == "shadow"]
    assert len(live) == 5
    assert len(shadow) == 5
    assert shadow[0].version == 2
    assert shadow[0].outputs == packages.expected(2, records)
    assert shadow[0].request_id == "shadowed-1"
    assert live[0].outputs == packages.expected(1, records)
    assert live[0].inputs["temp"] == [row["temp"] for row in records]
    assert (live[0].deployment, live[0].model, live[0].protocol, live[0].status) == ("bike", "bike", "native", 200)
    assert (
        app.metrics.registry.get_sample_value(
            "loopml_shadow_requests_total",
            {"deployment": "bike", "model": "bike", "version": "2", "outcome": "answered"},
        )
        == 5
    )


def test_a_failing_request_log_never_fails_the_answer(packages: Packages) -> None:
    class BrokenSink:
        def append(self, record: object) -> None:
            raise RuntimeError(f"disk full, cannot write {record!r}")

        def close(self) -> None:
            raise RuntimeError("disk full, cannot flush")

    app, _ = make_app(deployment(version(packages, 1)))
    app.request_log = BrokenSink()
    with TestClient(app) as client:  # and its failing close does not fail the shutdown
        assert client.post(URL, json={"records": packages.records(1)}).status_code == 200


def test_a_version_that_fails_is_logged_with_its_status(packages: Packages, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = MemorySink()
    app, _ = make_app(deployment(version(packages, 1)), sink=sink, batching=BatchingConfig(enabled=False))
    with TestClient(app) as client:
        served = app.host.routes["bike"].live[0].served.model  # type: ignore[attr-defined]

        def broken(matrix: object) -> object:
            raise RuntimeError("out of memory")

        monkeypatch.setattr(served, "_predict", broken)
        response = client.post(URL, json={"records": packages.records(1)}, headers={"X-Request-Id": "failing-1"})
    assert response.status_code == 500
    assert [(r.request_id, r.status, r.version, r.outputs) for r in sink.records] == [("failing-1", 500, 1, [])]
