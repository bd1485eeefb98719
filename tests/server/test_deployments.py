"""Deployments over HTTP: deploy, status, canary, rollback, promote, history, decisions, shadow comparison,
and the 4xx answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

from .support import API, Api
from .test_models import _logged_model, _version


def _bike(api: Api) -> None:
    response = api.client.post(f"{API}/models", json={"name": "bike"}, headers=api.headers())
    assert response.status_code == 200, response.text
    run_id = _logged_model(api)
    for _ in range(2):
        _version(api, run_id)
    assert api.client.put(f"{API}/models/bike/aliases/champion", json={"version": 1}, headers=api.headers())


def _post(api: Api, url: str, body: dict[str, object], secret: str | None = None) -> dict[str, object]:
    response = api.client.post(f"{API}{url}", json=body, headers=api.headers(secret) if secret else api.headers())
    assert response.status_code == 200, response.text
    found: dict[str, object] = response.json()
    return found


def test_deploy_canary_rollback_promote_and_history(api: Api) -> None:
    _bike(api)
    first = _post(api, "/deployments", {"name": "bike-demand", "model": "bike@champion"})["deployment"]
    assert first["versions"] == [{"model": "bike", "version": 1, "weight": 100, "role": "stable"}]  # type: ignore[index]
    canary = _post(
        api,
        "/deployments",
        {
            "name": "bike-demand",
            "model": "bike/2",
            "strategy": "canary",
            "canary_steps": [20, 100],
            "analysis_seconds": 120,
            "thresholds": {"min_requests": 10},
        },
    )["deployment"]
    assert canary["state"] == "progressing" and canary["revision"] == 2  # type: ignore[index]
    assert canary["thresholds"]["min_requests"] == 10  # type: ignore[index]
    assert [v["weight"] for v in canary["versions"]] == [80, 20]  # type: ignore[index]
    listed = api.client.get(f"{API}/deployments", headers=api.headers()).json()["deployments"]
    assert [d["name"] for d in listed] == ["bike-demand"]
    rolled = _post(api, "/deployments/bike-demand/rollback", {"reason": "saw errors"})["deployment"]
    assert rolled["state"] == "rolled_back"  # type: ignore[index]
    shadow = _post(api, "/deployments", {"name": "bike-demand", "model": "bike/2", "strategy": "shadow"})
    assert shadow["deployment"]["versions"][1]["role"] == "shadow"  # type: ignore[index]
    promoted = _post(api, "/deployments/bike-demand/promote", {})["deployment"]
    assert promoted["versions"] == [{"model": "bike", "version": 2, "weight": 100, "role": "stable"}]  # type: ignore[index]
    got = api.client.get(f"{API}/deployments/bike-demand", headers=api.headers()).json()["deployment"]
    assert (got["revision"], got["state"]) == (5, "promoted")
    history = api.client.get(f"{API}/deployments/bike-demand/history", params={"limit": 2}, headers=api.headers())
    assert [(r["revision"], r["reason"]) for r in history.json()["revisions"]] == [
        (5, "promote bike/2; alias bike@champion moved from 1 to 2"),  # the deployment follows bike@champion
        (4, "shadow bike/2 against stable bike/1"),
    ]
    decisions = api.client.get(f"{API}/deployments/bike-demand/decisions", headers=api.headers())
    assert decisions.status_code == 200 and decisions.json()["decisions"] == []


def test_shadow_comparison_reads_the_request_log(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    api = api_factory(request_log_dir=tmp_path / "request-log")
    _bike(api)
    _post(api, "/deployments", {"name": "bike-demand", "model": "bike/1"})
    _post(api, "/deployments", {"name": "bike-demand", "model": "bike/2", "strategy": "shadow"})
    settings = api.app.state.settings
    now = time.time_ns() // 1_000_000
    with RequestLog(settings.resolved_request_log_dir(), flush_ms=20) as log:
        for i in range(10):
            for version, role, value, latency in ((1, "stable", float(i), 5.0), (2, "shadow", i + (i % 2) * 0.5, 9.0)):
                log.append(
                    RequestRecord(
                        f"r{i}",
                        now - 1000 + i,
                        "bike-demand",
                        "bike",
                        version,
                        role,
                        {"x": [i]},
                        [value],
                        latency,
                        200,
                        "native",
                        None,
                    )
                )
    response = api.client.get(
        f"{API}/deployments/bike-demand/shadow-comparison", params={"tolerance": 0.1}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    comparison = response.json()["comparison"]
    assert (comparison["compared"], comparison["agreement_rate"], comparison["shadow"]) == (10, 0.5, "bike/2")
    assert comparison["difference"]["p50"] == 0.25 and comparison["difference"]["mean_abs"] == 0.25
    assert comparison["latency_ms"]["live"]["p99"] == 5.0 and comparison["latency_ms"]["shadow"]["p50"] == 9.0


def test_deployment_mistakes_are_4xx(api: Api) -> None:
    _bike(api)
    viewer = api.token("viewer")
    other = api.token("editor", project="other")
    cases = [
        ("post", "/deployments", {"name": "d", "model": "bike/1", "strategy": "blue"}, 400, "invalid_request"),
        ("post", "/deployments", {"name": "d", "model": "bike/1", "extra": 1}, 400, "invalid_request"),
        ("post", "/deployments", {"name": "d", "model": "bike/9"}, 404, "model_version_not_found"),
        ("post", "/deployments", {"name": "d", "model": "bike/2", "strategy": "canary"}, 400, "invalid_input"),
        ("post", "/deployments", {"name": "a/b", "model": "bike/1"}, 400, "invalid_name"),
        ("post", "/deployments", {"name": "d", "model": "bike/1", "thresholds": {"x": 1}}, 400, "invalid_input"),
        ("get", "/deployments/nope", None, 404, "deployment_not_found"),
        ("post", "/deployments/nope/rollback", {}, 404, "deployment_not_found"),
        ("get", "/deployments/nope/history?limit=0", None, 400, "invalid_request"),
    ]
    for method, url, body, status, code in cases:
        response = api.client.request(method, f"{API}{url}", json=body, headers=api.headers())
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (url, body, response.text)
    _post(api, "/deployments", {"name": "d", "model": "bike/1"})
    for url in ("/deployments/d/rollback", "/deployments/d/promote", "/deployments/d/shadow-comparison"):
        method = "get" if url.endswith("comparison") else "post"
        response = api.client.request(
            method, f"{API}{url}", json=None if method == "get" else {}, headers=api.headers()
        )
        assert response.status_code == 400, response.text
    denied = api.client.post(f"{API}/deployments", json={"name": "d", "model": "bike/2"}, headers=api.headers(viewer))
    assert denied.status_code == 403
    hidden = api.client.get(f"{API}/deployments/d", headers=api.headers(other))
    assert hidden.status_code == 404
    assert api.client.get(f"{API}/deployments", headers=api.headers(other)).json()["deployments"] == []
    assert api.client.get(f"{API}/deployments").status_code == 401
