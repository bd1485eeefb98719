"""Hypothesis-driven requests to every MLflow route, on both backends: never a 5xx (the MLflow client would
retry it for minutes), and every error in MLflow's shape `{"error_code", "message"}`.

MLflow's routes are not in loopml's OpenAPI document (they are MLflow's protocol), so the requests are
generated here: the fields each message has, plus stray ones, with values of any JSON type (numbers as
strings, NaN, huge integers, control characters, nested lists), some of them pointing at an experiment and
a run that exist so the generator reaches past the lookups.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.server.mlflow import is_mlflow_path

from ..support import ADMIN_SECRET, Api, TestClient, make_app
from .support import call

MAX_EXAMPLES = 30

FIELDS = [
    "experiment_id",
    "experiment_ids",
    "experiment_name",
    "name",
    "new_name",
    "run_id",
    "run_uuid",
    "run_ids",
    "run_name",
    "key",
    "value",
    "timestamp",
    "step",
    "status",
    "end_time",
    "start_time",
    "metrics",
    "params",
    "tags",
    "filter",
    "order_by",
    "max_results",
    "page_token",
    "run_view_type",
    "view_type",
    "metric_key",
    "start_step",
    "end_step",
    "datasets",
    "models",
    "path",
    "user_id",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["NaN", "Infinity", "-1", "0", "1e400", "9" * 30, "metrics.m > 1", "FINISHED", "ALL", "\x00"]),
)


def _values(world: dict[str, str]) -> st.SearchStrategy[Any]:
    known = st.sampled_from([world["experiment_id"], world["run_id"], "0", "m", "loss"])
    pair = st.fixed_dictionaries({"key": st.one_of(st.text(max_size=20), known), "value": scalars})
    metric = st.fixed_dictionaries(
        {"key": st.one_of(st.text(max_size=20), known), "value": scalars, "timestamp": scalars, "step": scalars}
    )
    nested = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
    return st.one_of(known, scalars, st.lists(st.one_of(known, pair, metric, scalars), max_size=4), nested)


def _bodies(world: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), _values(world), max_size=8)


def _query(body: dict[str, Any]) -> dict[str, Any]:
    """A GET message as query parameters: lists repeat the parameter, other values as text."""
    params: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, list):
            params[key] = [v if isinstance(v, str) else json.dumps(v) for v in value]
        elif value is not None:
            params[key] = value if isinstance(value, str) else json.dumps(value)
    return params


def _check(response: Any, where: str) -> None:
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text[:500]}"
    # The client resolves dot segments before sending: `artifacts/../..` reaches `/api/2.0/`, loopml's own.
    if response.status_code >= 400 and is_mlflow_path(response.request.url.path):
        body = response.json()
        assert isinstance(body.get("error_code"), str) and body["error_code"], where
        assert isinstance(body.get("message"), str) and body["message"], where


@pytest.fixture
def fuzzed(db_url: str, tmp_path: Path) -> Iterator[tuple[Api, dict[str, str]]]:
    app, store = make_app(db_url, tmp_path / "artifacts", max_request_bytes=1 << 20)
    client = TestClient(app)
    api = Api(app=app, client=client, store=store, artifact_root=tmp_path / "artifacts")
    experiment_id = call(api, "POST", "/experiments/create", {"name": "fuzz"})["experiment_id"]
    run_id = call(api, "POST", "/runs/create", {"experiment_id": experiment_id})["run"]["info"]["run_id"]
    call(api, "POST", "/runs/log-metric", {"run_id": run_id, "key": "loss", "value": 1, "timestamp": 1})
    try:
        yield api, {"experiment_id": experiment_id, "run_id": run_id}
    finally:
        client.close()
        store.close()


def _mlflow_routes(api: Api) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(api.app.routes)
        for method in route.methods or ()
        if method != "HEAD" and route.path.startswith("/api/") and "mlflow" in route.path
    )


def test_no_mlflow_route_answers_a_server_error(fuzzed: tuple[Api, dict[str, str]]) -> None:
    api, world = fuzzed
    routes = _mlflow_routes(api)
    assert len(routes) >= 28
    for method, path in routes:
        if "{path:path}" not in path:  # the proxy's file routes are fuzzed below
            _fuzz_route(api, world, method, path)


def _fuzz_route(api: Api, world: dict[str, str], method: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=_bodies(world), raw=st.booleans(), junk=st.binary(max_size=64))
    def send(body: dict[str, Any], raw: bool, junk: bytes) -> None:
        if method == "GET":
            response = api.client.get(path, params=_query(body), headers=headers)
        elif raw:
            response = api.client.request(method, path, content=junk, headers=headers)
        else:
            text = json.dumps(body, allow_nan=True)  # Python clients send NaN literals; accept them
            response = api.client.request(method, path, content=text.encode(), headers=headers)
        _check(response, f"{method} {path} {body!r}")

    send()


segment = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["..", ".", "%2e%2e", "%252e", "%00", "a%5cb", "~", "C:", "artifacts", "models", "%ff"]),
)


def test_no_proxy_path_answers_a_server_error(fuzzed: tuple[Api, dict[str, str]]) -> None:
    api, world = fuzzed
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    real = st.sampled_from([world["experiment_id"], world["run_id"], "artifacts"])

    @settings(max_examples=4 * MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(parts=st.lists(st.one_of(segment, real), min_size=1, max_size=6), upload=st.booleans())
    def send(parts: list[str], upload: bool) -> None:
        # quoted so the client sends what was generated; '%' stays, so the hostile escapes arrive as written
        path = "/api/2.0/mlflow-artifacts/artifacts/" + "/".join(quote(p, safe="%~:.\\") for p in parts)
        if upload:
            response = api.client.put(path, content=b"fuzz", headers=headers)
        else:
            response = api.client.get(path, headers=headers)
        _check(response, f"{'PUT' if upload else 'GET'} {path}")
        listing = api.client.get(
            "/api/2.0/mlflow-artifacts/artifacts", params={"path": "/".join(parts)}, headers=headers
        )
        _check(listing, f"list {parts!r}")

    send()
