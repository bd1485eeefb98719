"""Monitoring over REST: monitors, runs, windows, feedback, alerts, the HTML report and `/metrics`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from loopml.data import build_profile
from loopml.domain import Principal, Role
from loopml.monitoring import StoreSegmentPublisher
from loopml.monitoring.windows import read_records
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

from .support import API, Api

ADMIN = Principal("admin", Role.ADMIN, None)
DAY = 86_400_000
T0 = 19_700 * DAY
MANIFEST = b'{"flavor": "sklearn", "files": {}}'


def prepare(api: Api, tmp_path: Path) -> None:
    """A registered version `churn/1` and three days of traffic, the last two shifted."""
    tracking, registry = api.app.state.tracking, api.app.state.registry
    registry.create_model(ADMIN, "churn")
    run = tracking.create_run(ADMIN, tracking.get_or_create_experiment(ADMIN, "e").id)
    tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
    registry.create_version(ADMIN, "churn", run.id, "model", hashlib.sha256(MANIFEST).hexdigest(), "sklearn")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 3000)
    profile = build_profile(pd.DataFrame({"x": x, "prediction": (x > 0).astype(int)}), prediction_column="prediction")
    response = api.client.put(
        f"{API}/models/churn/versions/1/reference-profile", json={"profile": profile.to_dict()}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    publisher = StoreSegmentPublisher(api.store, tracking.artifacts)
    with RequestLog(tmp_path / "log", publisher=publisher, flush_ms=20) as log:
        for day, shift in enumerate((0.0, 2.0, 2.0)):
            for i, value in enumerate(rng.normal(shift, 1, 100)):
                log.append(
                    RequestRecord(
                        f"r{day}-{i}", T0 + day * DAY + i, "churn", "churn", 1, "stable",
                        {"x": [float(value)]}, [int(value > 0)], 1.0, 200, "native", None,
                    )
                )  # fmt: skip


def test_monitor_lifecycle_over_rest(api: Api, tmp_path: Path) -> None:
    prepare(api, tmp_path)
    headers = api.headers()
    body = {"name": "churn", "deployment": "churn", "window": "1d", "label_delay": "0s", "consecutive": 2}
    created = api.client.post(f"{API}/monitors", json=body, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["monitor"]["window_seconds"] == 86_400
    duplicate = api.client.post(f"{API}/monitors", json=body, headers=headers)
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "already_exists"
    assert [m["name"] for m in api.client.get(f"{API}/monitors", headers=headers).json()["monitors"]] == ["churn"]
    labels = {"feedback": [{"request_id": f"r0-{i}", "label": 1} for i in range(100)]}
    assert api.client.post(f"{API}/feedback", json=labels, headers=headers).json() == {"recorded": 100}
    single = {"request_id": "r1-0", "label": 0, "time_ms": T0 + DAY + 5}
    assert api.client.post(f"{API}/feedback", json=single, headers=headers).json() == {"recorded": 1}
    run = api.client.post(f"{API}/monitors/churn/run", json={"now": T0 + 3 * DAY}, headers=headers)
    assert run.status_code == 200, run.text
    assert run.json()["run"]["windows"] == 3 and run.json()["run"]["pending"] == 0
    assert run.json()["run"]["opened"]  # two shifted days in a row: k = 2
    windows = api.client.get(f"{API}/monitors/churn/windows", headers=headers).json()["windows"]
    assert [w["breaches"]["drift"] for w in windows] == [False, True, True]
    assert windows[0]["labelled_rows"] == 100
    alerts = api.client.get(f"{API}/alerts", params={"state": "open"}, headers=headers).json()["alerts"]
    assert {a["kind"] for a in alerts} >= {"drift"}
    report = api.client.get(f"{API}/monitors/churn/report", headers=headers)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<svg" in report.text
    assert api.client.get(f"{API}/monitors/missing", headers=headers).status_code == 404


def test_metrics_endpoint_needs_a_token_unless_public(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    api = api_factory()
    prepare(api, tmp_path)
    api.client.post(f"{API}/monitors", json={"name": "m", "deployment": "churn"}, headers=api.headers())
    api.client.post(f"{API}/monitors/m/run", json={"now": T0 + 3 * DAY}, headers=api.headers())
    assert api.client.get("/metrics").status_code == 401
    viewer = api.token("viewer")
    scraped = api.client.get("/metrics", headers=api.headers(viewer))
    assert scraped.status_code == 200
    assert 'loopml_drift_score{deployment="churn",feature="x"}' in scraped.text
    assert 'loopml_drift_score{deployment="churn",feature="prediction"}' in scraped.text
    public = api_factory(metrics_public=True)
    assert public.client.get("/metrics").status_code == 200


def test_bad_monitor_and_feedback_bodies_are_400s(api: Api) -> None:
    headers = api.headers()
    for body in (
        {"name": "m", "deployment": "d", "window": "soon"},
        {"name": "m", "deployment": "d", "kinds": ["nope"]},
        {"name": "m", "deployment": "d", "consecutive": 0},
        {"name": "m", "deployment": "d", "webhook": "ftp://x"},
    ):
        assert api.client.post(f"{API}/monitors", json=body, headers=headers).status_code in (400, 422), body
    for body in ({"label": 1}, {"feedback": []}, {"request_id": "a", "key": "b", "label": 1}):
        assert api.client.post(f"{API}/feedback", json=body, headers=headers).status_code in (400, 422), body
    viewer = api.token("viewer")
    denied = api.client.post(f"{API}/monitors", json={"name": "m", "deployment": "d"}, headers=api.headers(viewer))
    assert denied.status_code == 403


def test_labels_of_another_projects_token_never_reach_a_monitor(api: Api, tmp_path: Path) -> None:
    prepare(api, tmp_path)  # model churn in project "default", three days of traffic of deployment churn
    api.app.state.deploy.deploy(ADMIN, "churn", "churn/1")
    api.client.post(f"{API}/monitors", json={"name": "churn", "deployment": "churn"}, headers=api.headers())
    foreign = api.headers(api.token("editor", "fraud"))
    own = api.headers(api.token("editor", "default"))
    day0 = {"feedback": [{"request_id": f"r0-{i}", "label": 1} for i in range(100)]}
    day1 = {"feedback": [{"request_id": f"r1-{i}", "label": 1} for i in range(100)]}
    assert api.client.post(f"{API}/feedback", json=day0, headers=foreign).json() == {"recorded": 100}
    assert api.client.post(f"{API}/feedback", json=day1, headers=foreign).json() == {"recorded": 100}
    assert api.client.post(f"{API}/feedback", json=day1, headers=own).json() == {"recorded": 100}

    run = api.client.post(f"{API}/monitors/churn/run", json={"now": T0 + 3 * DAY}, headers=api.headers())
    assert run.status_code == 200, run.text
    windows = api.client.get(f"{API}/monitors/churn/windows", headers=api.headers()).json()["windows"]
    assert [w["labelled_rows"] for w in windows] == [0, 100, 0]
    assert api.client.get(f"{API}/monitors/churn", headers=foreign).status_code == 404


def test_a_project_admin_cannot_attach_a_webhook_to_another_projects_deployment(api: Api, tmp_path: Path) -> None:
    prepare(api, tmp_path)
    api.app.state.deploy.deploy(ADMIN, "churn", "churn/1")  # in project "default"
    body = {"name": "spy", "deployment": "churn", "webhook": "https://hooks.example.com/x"}
    refused = api.client.post(f"{API}/monitors", json=body, headers=api.headers(api.token("admin", "fraud")))
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "deployment_not_found"
    assert api.client.get(f"{API}/monitors", headers=api.headers()).json()["monitors"] == []


def test_a_monitor_name_with_a_nul_is_a_400_on_every_route(api: Api) -> None:
    # PostgreSQL text cannot hold NUL: without a check at the edge, the lookup was a driver error (500).
    for method, path in [
        ("GET", "/monitors/a%00b"),
        ("POST", "/monitors/a%00b/run"),
        ("GET", "/monitors/a%00b/windows"),
        ("GET", "/monitors/a%00b/report"),
        ("GET", "/alerts?monitor=a%00b"),
    ]:
        response = api.client.request(method, f"{API}{path}", headers=api.headers())
        assert response.status_code == 400, (path, response.text)
        assert "NUL" in response.json()["error"]["message"]


def test_backfill_over_rest_gives_the_windows_of_the_served_requests(api: Api, tmp_path: Path) -> None:
    prepare(api, tmp_path)
    headers = api.headers()
    for name in ("live", "past"):
        body = {"name": name, "deployment": "churn", "model": "churn", "version": 1, "consecutive": 2}
        assert api.client.post(f"{API}/monitors", json=body, headers=headers).status_code == 200
    api.client.post(f"{API}/monitors/live/run", json={"now": T0 + 3 * DAY}, headers=headers)
    with api.store.read() as unit:
        segments = unit.monitoring.segments("churn")
    logged = read_records(api.app.state.tracking.artifacts, segments, "churn", 0).to_pylist()
    requests = [
        {
            "request_id": r["request_id"],
            "time_ms": r["time_ms"],
            "inputs": orjson.loads(r["inputs"]),
            "outputs": orjson.loads(r["outputs"]),
        }
        for r in logged
    ]
    filled = api.client.post(
        f"{API}/monitors/past/backfill", json={"requests": requests, "now": T0 + 3 * DAY}, headers=headers
    )
    assert filled.status_code == 200, filled.text
    assert filled.json()["run"]["windows"] == 3 and filled.json()["run"]["opened"]
    got = {
        name: [
            (w["rows"], w["drift"])
            for w in api.client.get(f"{API}/monitors/{name}/windows", headers=headers).json()["windows"]
        ]
        for name in ("live", "past")
    }
    assert got["past"] == got["live"]
    again = api.client.post(f"{API}/monitors/past/backfill", json={"requests": requests}, headers=headers)
    assert again.status_code == 400 and "already has windows" in again.text
    bad = api.client.post(f"{API}/monitors/live/backfill", json={"requests": [{"request_id": "a"}]}, headers=headers)
    assert bad.status_code == 400 and "time_ms" in bad.text
