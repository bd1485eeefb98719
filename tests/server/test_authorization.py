"""Every route of the API x every role x {same project, other project, global token}: the expected answer.

`RULES` is the authorization table as data: per route, the least role it needs and how the project of what it
touches is found; for the operations it comes from the operation table (`loopml.api.OPERATIONS`), so what the table
declares is what this test checks the services enforce. `expected` turns a rule into the answer of each cell;
`CALLS` builds a request that succeeds for an allowed caller. A route of the built app missing from `RULES` (or a
rule for a route that is gone) fails `test_every_route_has_a_rule`.

The resources live in project `alpha`. "same" is a token scoped to `alpha`, "other" one scoped to `beta`, "global"
one without a project. Authorization does not depend on the metadata backend, so the table runs on SQLite only, over
one world shared by the module (each call that changes something makes its own fresh target).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from fastapi.routing import iter_route_contexts

from loopml.api import OPERATIONS, Scope
from loopml.data import build_profile
from loopml.domain import Role
from loopml.domain.tokens import LOCAL_PRINCIPAL
from loopml.governance import GovernanceService
from loopml.server.app import API_PREFIX

from .support import API, Api, TestClient, make_app


@dataclass(frozen=True)
class Rule:
    role: Role | None
    scope: Scope
    found_by: str
    """How the project is found (documentation of the rule; the same words as docs/server.md)."""


V, E, A = Role.VIEWER, Role.EDITOR, Role.ADMIN

OUTSIDE_THE_TABLE: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/openapi.json"): Rule(None, "public", "-"),
    ("GET", "/api/v1/docs"): Rule(None, "public", "-"),
    ("GET", "/docs/oauth2-redirect"): Rule(None, "public", "-"),
    ("GET", "/api/v1/health"): Rule(None, "public", "-"),
    ("GET", "/metrics"): Rule(V, "listing", "series -> deployment's project"),
}
"""The routes that are not operations of the table: the OpenAPI document and its pages, liveness, the scrape."""

RULES: dict[tuple[str, str], Rule] = OUTSIDE_THE_TABLE | {
    (op.http, f"{API_PREFIX}{op.path}"): Rule(Role(op.role) if op.role else None, op.scope, op.found_by)
    for op in OPERATIONS.values()
}
"""The authorization table: the operation table's role, scope and `found_by`, plus the routes outside it."""

Where = Literal["same", "other", "global"]
PROJECT_OF: dict[Where, str | None] = {"same": "alpha", "other": "beta", "global": None}


def expected(rule: Rule, role: Role, where: Where) -> int:
    """The status a token with `role`, of the project `where`, gets from a route with `rule`. The role is
    checked first, so a refused role never tells whether the resource exists."""
    if rule.role is None:
        return 200
    if not role.allows(rule.role):
        return 403
    if where == "global":
        return 200
    if rule.scope == "global":
        return 403
    if where == "same":
        return 200
    return {"path": 404, "body": 403, "listing": 200, "own": 200}[rule.scope]


# -- the world: resources of project alpha, one token per role and project ------------------------------

MANIFEST = b'{"flavor": "sklearn", "files": {}}'
DIGEST = hashlib.sha256(MANIFEST).hexdigest()


@dataclass
class World:
    api: Api
    experiment_id: int
    run_id: str
    secrets: dict[tuple[Role, Where], str]
    alpha_token_id: str
    profile: dict[str, Any]
    counter: Iterator[int] = field(default_factory=itertools.count)
    loop_id: str = ""
    pipeline_run: str = ""
    """A finished pipeline run of project alpha (pipeline `ok` of FLOWS, step `double`)."""
    step_run: str = ""

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def admin(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.api.client.request(method, f"{API}{url}", headers=self.api.headers(), **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def deployment(self, *steps: tuple[str, str]) -> str:
        """A fresh deployment of model `m-alpha` moved through (version, strategy) steps."""
        name = self.fresh("d")
        for version, strategy in steps:
            self.admin("POST", "/deployments", json={"name": name, "model": f"m-alpha/{version}", "strategy": strategy})
        return name


def _world(api: Api) -> World:
    governance: GovernanceService = api.app.state.governance
    secrets = {}
    for role, where in itertools.product(Role, PROJECT_OF):
        _, secrets[(role, where)] = governance.create_token(
            LOCAL_PRINCIPAL, f"{role.value}-{where}", role.value, PROJECT_OF[where]
        )
    alpha_token_id = next(t.id for t in governance.list_tokens(LOCAL_PRINCIPAL) if t.name == "viewer-same")
    world = World(api, 0, "", secrets, alpha_token_id, {})
    world.experiment_id = world.admin("POST", "/experiments", json={"name": "e", "project": "alpha"})["experiment"][
        "id"
    ]
    world.run_id = world.admin("POST", "/runs", json={"experiment_id": world.experiment_id})["run"]["id"]
    run = f"/runs/{world.run_id}"
    world.admin("PUT", f"{run}/artifacts/a.txt", content=b"a")
    world.admin("PUT", f"{run}/artifacts/model/loopml-model.json", content=MANIFEST)
    world.admin("POST", f"{run}/metrics", json={"keys": ["loss"], "values": [1.0], "steps": [0], "timestamps": [0]})
    world.admin("POST", "/models", json={"name": "m-alpha", "project": "alpha"})
    version = {"run_id": world.run_id, "artifact_path": "model", "manifest_digest": DIGEST, "flavor": "sklearn"}
    world.admin("POST", "/models/m-alpha/versions", json=version)
    world.admin("POST", "/models/m-alpha/versions", json=version)
    world.admin("PUT", "/models/m-alpha/aliases/champion", json={"version": 1})
    x = np.random.default_rng(0).normal(0, 1, 200)
    world.profile = build_profile(pd.DataFrame({"x": x})).to_dict()
    world.admin("PUT", "/models/m-alpha/versions/1/reference-profile", json={"profile": world.profile})
    world.admin("POST", "/deployments", json={"name": "d-alpha", "model": "m-alpha/1"})
    world.admin("POST", "/deployments", json={"name": "s-alpha", "model": "m-alpha/1"})
    world.admin("POST", "/deployments", json={"name": "s-alpha", "model": "m-alpha/2", "strategy": "shadow"})
    world.admin("POST", "/monitors", json={"name": "mon-alpha", "deployment": "d-alpha"})
    with api.store.write("test") as unit:  # an alert to list, as a run of the monitor would open it
        unit.monitors.open_alert("mon-alpha", "drift", "mon-alpha:drift:0", 0, {})
    world.admin("POST", "/retrain/policies", json=_retrain_policy("m-alpha"))
    world.loop_id = _waiting_loop(world, "m-alpha")
    done = _pipeline_run(world, "ok")
    world.pipeline_run, world.step_run = done.run_id, done.steps[0].run_id
    world.admin("POST", "/pipelines/schedules", json={"name": "sched-alpha", "pipeline": "flows.py:ok",
                                                      "cron": "0 2 * * *", "project": "alpha"})  # fmt: skip
    world.admin("POST", "/pipelines/schedules/sched-alpha/fire", json={"key": "alert:0", "reason": "r"})
    return world


RETRAIN_PIPELINE = f"{Path(__file__).resolve().parents[2] / 'examples' / 'bike' / 'pipeline.py'}:nightly"


def _retrain_policy(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": "m-alpha",
        "monitor": "mon-alpha",
        "pipeline": RETRAIN_PIPELINE,
        "triggers": ["drift:3"],
    }


def _waiting_loop(w: World, policy: str) -> str:
    """A loop of `policy` waiting for approval, as the retraining controller leaves it after a passed gate."""
    import uuid

    with w.api.store.write("test") as unit:
        found = unit.retrain.claim(unit.retrain.policy(policy), uuid.uuid4().hex, w.fresh("k"), "drift", {}, 0)
        assert found is not None
        unit.retrain.transition(found, "awaiting_approval", {})
    return found.id


def _fresh_policy(w: World) -> str:
    name = w.fresh("p")
    w.admin("POST", "/retrain/policies", json=_retrain_policy(name))
    return name


def _decided_loop(w: World) -> str:
    name = w.fresh("p")
    w.admin("POST", "/retrain/policies", json=_retrain_policy(name))
    return _waiting_loop(w, name)


FLOWS = """
import loopml as lm

@lm.step
def double(x: int) -> int:
    print("doubling", x)
    return 2 * x

@lm.step
def boom(y: int) -> int:
    raise RuntimeError("boom")

@lm.pipeline
def ok(x: int = 1):
    return double(x)

@lm.pipeline
def bad(x: int = 1):
    return boom(double(x))
"""


def _pipeline_run(w: World, name: str) -> Any:
    """A pipeline run of project alpha, driven in this process (inline) on the app's store."""
    from loopml.domain import Principal
    from loopml.pipelines import load_pipeline, run_pipeline

    alpha = Principal(actor="test", role=Role.ADMIN, project="alpha")
    flows = load_pipeline(f"{w.api.artifact_root.parent / 'flows' / 'flows.py'}:{name}")
    return run_pipeline(w.api.app.state.pipelines, alpha, flows, {}, "inline", project="alpha")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authorization")
    (root / "flows").mkdir()
    (root / "flows" / "flows.py").write_text(FLOWS)
    app, store = make_app(
        f"sqlite:///{root / 'loopml.db'}",
        root / "artifacts",
        home=root / "home",
        pipeline_roots=str(root / "flows"),
        pipeline_workers=64,
    )
    client = TestClient(app)
    try:
        yield _world(Api(app=app, client=client, store=store, artifact_root=root / "artifacts"))
    finally:
        app.state.launcher.wait_idle(120)
        client.close()
        store.close()


# -- one request per route that succeeds for an allowed caller ----------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    shows_alpha: Callable[[Any], bool] | None = None
    """For listings: whether the answer shows alpha's resource."""


def _names(key: str, field_name: str, wanted: str) -> Callable[[Any], bool]:
    return lambda body: wanted in [item[field_name] for item in body[key]]


def _run(w: World) -> str:
    return f"/runs/{w.run_id}"


def _version_body(w: World) -> dict[str, Any]:
    path = w.fresh("model")
    w.admin("PUT", f"{_run(w)}/artifacts/{path}/loopml-model.json", content=MANIFEST)
    return {"run_id": w.run_id, "artifact_path": path, "manifest_digest": DIGEST, "flavor": "sklearn"}


def _alias(w: World) -> str:
    alias = w.fresh("a")
    w.admin("PUT", f"/models/m-alpha/aliases/{alias}", json={"version": 1})
    return f"/models/m-alpha/aliases/{alias}"


def _paused(w: World) -> str:
    name = w.deployment(("1", "direct"), ("2", "canary"))
    w.admin("POST", f"/deployments/{name}/pause", json={})
    return name


def _token_to_revoke(w: World) -> str:
    governance: GovernanceService = w.api.app.state.governance
    token, _ = governance.create_token(LOCAL_PRINCIPAL, w.fresh("t"), "viewer", "alpha")
    return f"/tokens/{token.id}"


def _backfill(w: World) -> Call:
    """A backfill into a fresh monitor of d-alpha (a monitor takes one backfill, before it has windows)."""
    name = w.fresh("mon")
    w.admin("POST", "/monitors", json={"name": name, "deployment": "d-alpha"})
    request = {"request_id": "b1", "time_ms": 0, "model": "m-alpha", "version": 1, "inputs": {"x": [0.1]}}
    return Call("POST", f"/monitors/{name}/backfill", {"json": {"requests": [{**request, "outputs": [1.0]}], "now": 0}})


def _open_run(w: World) -> str:
    return f"/runs/{w.admin('POST', '/runs', json={'experiment_id': w.experiment_id})['run']['id']}"


_EVALUATION = {
    "task": "regression", "label": "y", "dataset_digest": "0" * 64, "dataset_source": "memory", "rows": 1,
    "metrics": {"rmse": 1.0},
}  # fmt: skip


def _evaluation(w: World) -> str:
    return str(w.admin("POST", "/models/m-alpha/versions/1/evaluations", json=_EVALUATION)["evaluation"]["id"])


def _gate_result(w: World) -> str:
    body = {"policy": "package:\n  max_mb: 100\n"}
    return str(w.admin("POST", "/models/m-alpha/versions/1/gate-results", json=body)["gate_result"]["id"])


def _features(w: World) -> str:
    """Feature definitions of project alpha (once per world): a view over a Parquet file the server may read."""
    root = w.api.artifact_root.parent
    source = root / "weather.parquet"
    if not source.exists():
        pd.DataFrame(
            {
                "station_id": [1, 2],
                "ts": pd.to_datetime(["2012-01-01 10:00", "2012-01-01 10:00"], utc=True),
                "temp": [0.2, 0.5],
            }
        ).to_parquet(source)
        w.api.app.state.features.source_dirs = (root.resolve(),)  # what LOOPML_FEATURES_SOURCE_DIRS sets
        w.admin("POST", "/features/apply", json={"definitions": _feature_definitions(str(source)), "project": "alpha"})
    return "alpha"


def _feature_definitions(path: str) -> list[dict[str, Any]]:
    view = {
        "entities": ["station"],
        "source": {"type": "file", "path": path, "timestamp": "ts", "created": None},
        "schema": [["temp", "float", None]],
        "ttl_seconds": 3600,
    }
    return [
        {"kind": "entity", "name": "station", "spec": {"join_keys": ["station_id"]}},
        {"kind": "feature_view", "name": "weather", "spec": view},
    ]


def _feature_apply(w: World) -> dict[str, Any]:
    project = _features(w)
    return {
        "definitions": _feature_definitions(str(w.api.artifact_root.parent / "weather.parquet")),
        "project": project,
    }


def _materialized(w: World) -> str:
    project = _features(w)
    w.admin(
        "POST",
        "/features/views/weather/materialize",
        json={"end": "2012-01-02", "start": "2012-01-01", "project": project},
    )
    return project


CALLS: dict[tuple[str, str], Callable[[World], Call]] = {
    ("GET", "/api/v1/openapi.json"): lambda _: Call("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"): lambda _: Call("GET", "/api/v1/docs"),
    ("GET", "/docs/oauth2-redirect"): lambda _: Call("GET", "/docs/oauth2-redirect"),
    ("GET", "/api/v1/health"): lambda _: Call("GET", "/health"),
    ("GET", "/api/v1/experiments"): lambda w: Call(
        "GET", "/experiments", shows_alpha=lambda b: w.experiment_id in [e["id"] for e in b["experiments"]]
    ),
    ("POST", "/api/v1/experiments"): lambda w: Call(
        "POST", "/experiments", {"json": {"name": w.fresh("e"), "project": "alpha"}}
    ),
    ("GET", "/api/v1/experiments/{experiment_id}"): lambda w: Call("GET", f"/experiments/{w.experiment_id}"),
    ("POST", "/api/v1/runs/search"): lambda w: Call(
        "POST", "/runs/search", {"json": {"experiment_ids": [w.experiment_id]}}
    ),
    ("POST", "/api/v1/runs"): lambda w: Call("POST", "/runs", {"json": {"experiment_id": w.experiment_id}}),
    ("GET", "/api/v1/runs/{run_id}"): lambda w: Call("GET", _run(w)),
    ("PATCH", "/api/v1/runs/{run_id}"): lambda w: Call("PATCH", _open_run(w), {"json": {"status": "FINISHED"}}),
    ("POST", "/api/v1/runs/{run_id}/params"): lambda w: Call(
        "POST", f"{_run(w)}/params", {"json": {"params": {w.fresh("p"): "1"}}}
    ),
    ("POST", "/api/v1/runs/{run_id}/tags"): lambda w: Call("POST", f"{_run(w)}/tags", {"json": {"tags": {"t": "1"}}}),
    ("POST", "/api/v1/runs/{run_id}/metrics"): lambda w: Call(
        "POST", f"{_run(w)}/metrics", {"json": {"keys": ["m"], "values": [1.0], "steps": [0], "timestamps": [0]}}
    ),
    ("GET", "/api/v1/runs/{run_id}/metrics/{key:path}"): lambda w: Call("GET", f"{_run(w)}/metrics/loss"),
    ("POST", "/api/v1/runs/{run_id}/datasets"): lambda w: Call(
        "POST",
        f"{_run(w)}/datasets",
        {"json": {"name": "d", "digest": "0" * 64, "schema": [["x", "float"]], "rows": 1}},
    ),
    ("GET", "/api/v1/runs/{run_id}/datasets"): lambda w: Call("GET", f"{_run(w)}/datasets"),
    ("PUT", "/api/v1/runs/{run_id}/artifacts/{path:path}"): lambda w: Call(
        "PUT", f"{_run(w)}/artifacts/{w.fresh('f')}.txt", {"content": b"x"}
    ),
    ("GET", "/api/v1/runs/{run_id}/artifacts"): lambda w: Call("GET", f"{_run(w)}/artifacts"),
    ("GET", "/api/v1/runs/{run_id}/artifacts/{path:path}"): lambda w: Call("GET", f"{_run(w)}/artifacts/a.txt"),
    ("GET", "/api/v1/models"): lambda _: Call("GET", "/models", shows_alpha=_names("models", "name", "m-alpha")),
    ("POST", "/api/v1/models"): lambda w: Call("POST", "/models", {"json": {"name": w.fresh("m"), "project": "alpha"}}),
    ("GET", "/api/v1/models/{name}"): lambda _: Call("GET", "/models/m-alpha"),
    ("PATCH", "/api/v1/models/{name}"): lambda _: Call("PATCH", "/models/m-alpha", {"json": {"description": "x"}}),
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): lambda w: Call(
        "PUT", f"/models/m-alpha/aliases/{w.fresh('a')}", {"json": {"version": 1}}
    ),
    ("GET", "/api/v1/models/{name}/aliases/{alias}"): lambda _: Call("GET", "/models/m-alpha/aliases/champion"),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"): lambda w: Call("DELETE", _alias(w)),
    ("GET", "/api/v1/models/{name}/versions"): lambda _: Call("GET", "/models/m-alpha/versions"),
    ("POST", "/api/v1/models/{name}/versions"): lambda w: Call(
        "POST", "/models/m-alpha/versions", {"json": _version_body(w)}
    ),
    ("GET", "/api/v1/models/{name}/versions/{version}"): lambda _: Call("GET", "/models/m-alpha/versions/1"),
    ("PATCH", "/api/v1/models/{name}/versions/{version}"): lambda _: Call(
        "PATCH", "/models/m-alpha/versions/1", {"json": {"description": "x"}}
    ),
    ("PUT", "/api/v1/models/{name}/versions/{version}/reference-profile"): lambda w: Call(
        "PUT", "/models/m-alpha/versions/1/reference-profile", {"json": {"profile": w.profile}}
    ),
    ("GET", "/api/v1/models/{name}/versions/{version}/reference-profile"): lambda _: Call(
        "GET", "/models/m-alpha/versions/1/reference-profile"
    ),
    ("POST", "/api/v1/model-versions/search"): lambda _: Call(
        "POST", "/model-versions/search", {"json": {}}, _names("model_versions", "name", "m-alpha")
    ),
    ("GET", "/api/v1/model-versions/resolve"): lambda _: Call(
        "GET", "/model-versions/resolve", {"params": {"uri": "models:/m-alpha@champion"}}
    ),
    ("GET", "/api/v1/tokens"): lambda w: Call(
        "GET", "/tokens", shows_alpha=lambda b: w.alpha_token_id in [t["id"] for t in b["tokens"]]
    ),
    ("POST", "/api/v1/tokens"): lambda w: Call(
        "POST", "/tokens", {"json": {"name": w.fresh("t"), "role": "viewer", "project": "alpha"}}
    ),
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda w: Call("DELETE", _token_to_revoke(w)),
    ("GET", "/api/v1/audit"): lambda w: Call(
        "GET", "/audit", shows_alpha=lambda b: w.run_id in [e["entity_id"] for e in b["events"]]
    ),
    ("GET", "/api/v1/audit/verify"): lambda _: Call("GET", "/audit/verify"),
    ("POST", "/api/v1/deployments"): lambda w: Call(
        "POST", "/deployments", {"json": {"name": w.fresh("d"), "model": "m-alpha/1"}}
    ),
    ("GET", "/api/v1/deployments"): lambda _: Call(
        "GET", "/deployments", shows_alpha=_names("deployments", "name", "d-alpha")
    ),
    ("GET", "/api/v1/deployments/{name}"): lambda _: Call("GET", "/deployments/d-alpha"),
    ("POST", "/api/v1/deployments/{name}/rollback"): lambda w: Call(
        "POST", f"/deployments/{w.deployment(('1', 'direct'), ('2', 'direct'))}/rollback", {"json": {}}
    ),
    ("POST", "/api/v1/deployments/{name}/promote"): lambda w: Call(
        "POST", f"/deployments/{w.deployment(('1', 'direct'), ('2', 'canary'))}/promote", {"json": {}}
    ),
    ("POST", "/api/v1/deployments/{name}/pause"): lambda w: Call(
        "POST", f"/deployments/{w.deployment(('1', 'direct'), ('2', 'canary'))}/pause", {"json": {"reason": "look"}}
    ),
    ("POST", "/api/v1/deployments/{name}/resume"): lambda w: Call(
        "POST", f"/deployments/{_paused(w)}/resume", {"json": {}}
    ),
    ("GET", "/api/v1/models/{name}/alias-history"): lambda _: Call("GET", "/models/m-alpha/alias-history"),
    ("GET", "/api/v1/deployments/{name}/history"): lambda _: Call("GET", "/deployments/d-alpha/history"),
    ("GET", "/api/v1/deployments/{name}/decisions"): lambda _: Call("GET", "/deployments/d-alpha/decisions"),
    ("GET", "/api/v1/deployments/{name}/shadow-comparison"): lambda _: Call(
        "GET", "/deployments/s-alpha/shadow-comparison"
    ),
    ("POST", "/api/v1/monitors"): lambda w: Call(
        "POST", "/monitors", {"json": {"name": w.fresh("mon"), "deployment": "d-alpha"}}
    ),
    ("GET", "/api/v1/monitors"): lambda _: Call(
        "GET", "/monitors", shows_alpha=_names("monitors", "name", "mon-alpha")
    ),
    ("GET", "/api/v1/monitors/{name}"): lambda _: Call("GET", "/monitors/mon-alpha"),
    ("POST", "/api/v1/monitors/{name}/run"): lambda _: Call("POST", "/monitors/mon-alpha/run", {"json": {"now": 0}}),
    ("POST", "/api/v1/monitors/{name}/backfill"): _backfill,
    ("GET", "/api/v1/monitors/{name}/windows"): lambda _: Call("GET", "/monitors/mon-alpha/windows"),
    ("GET", "/api/v1/monitors/{name}/report"): lambda _: Call("GET", "/monitors/mon-alpha/report"),
    ("POST", "/api/v1/feedback"): lambda _: Call("POST", "/feedback", {"json": {"request_id": "r1", "label": 1}}),
    ("GET", "/api/v1/alerts"): lambda _: Call("GET", "/alerts", shows_alpha=_names("alerts", "monitor", "mon-alpha")),
    ("GET", "/metrics"): lambda _: Call("GET", "/metrics", shows_alpha=lambda text: 'deployment="d-alpha"' in text),
    ("POST", "/api/v1/retrain/policies"): lambda w: Call(
        "POST", "/retrain/policies", {"json": _retrain_policy(w.fresh("p"))}
    ),
    ("GET", "/api/v1/retrain/policies"): lambda _: Call(
        "GET", "/retrain/policies", shows_alpha=_names("policies", "name", "m-alpha")
    ),
    ("GET", "/api/v1/retrain/policies/{name}"): lambda _: Call("GET", "/retrain/policies/m-alpha"),
    ("DELETE", "/api/v1/retrain/policies/{name}"): lambda w: Call(
        "DELETE",
        f"/retrain/policies/{_fresh_policy(w)}",
    ),
    ("GET", "/api/v1/retrain/loops"): lambda w: Call(
        "GET", "/retrain/loops", shows_alpha=lambda b: w.loop_id in [loop["id"] for loop in b["loops"]]
    ),
    ("GET", "/api/v1/retrain/loops/{loop_id}"): lambda w: Call("GET", f"/retrain/loops/{w.loop_id}"),
    ("POST", "/api/v1/retrain/loops/{loop_id}/approve"): lambda w: Call(
        "POST", f"/retrain/loops/{_decided_loop(w)}/approve", {"json": {}}
    ),
    ("POST", "/api/v1/retrain/loops/{loop_id}/reject"): lambda w: Call(
        "POST", f"/retrain/loops/{_decided_loop(w)}/reject", {"json": {}}
    ),
    ("POST", "/api/v1/models/{name}/versions/{version}/evaluations"): lambda _: Call(
        "POST", "/models/m-alpha/versions/1/evaluations", {"json": _EVALUATION}
    ),
    ("GET", "/api/v1/models/{name}/evaluations"): lambda _: Call("GET", "/models/m-alpha/evaluations"),
    ("GET", "/api/v1/evaluations/{evaluation_id}"): lambda w: Call("GET", f"/evaluations/{_evaluation(w)}"),
    ("POST", "/api/v1/models/{name}/versions/{version}/gate-results"): lambda _: Call(
        "POST", "/models/m-alpha/versions/1/gate-results", {"json": {"policy": "package:\n  max_mb: 100\n"}}
    ),
    ("GET", "/api/v1/models/{name}/gate-results"): lambda _: Call("GET", "/models/m-alpha/gate-results"),
    ("GET", "/api/v1/gate-results/{result_id}"): lambda w: Call("GET", f"/gate-results/{_gate_result(w)}"),
    ("PUT", "/api/v1/models/{name}/gate-requirements/{alias}"): lambda w: Call(
        "PUT", f"/models/m-alpha/gate-requirements/{w.fresh('g')}", {"json": {"required": True}}
    ),
    ("GET", "/api/v1/models/{name}/gate-requirements"): lambda _: Call("GET", "/models/m-alpha/gate-requirements"),
    ("GET", "/api/v1/pipelines/runs"): lambda w: Call(
        "GET", "/pipelines/runs", shows_alpha=lambda b: w.pipeline_run in [r["run_id"] for r in b["pipeline_runs"]]
    ),
    ("POST", "/api/v1/pipelines/runs"): lambda _: Call(
        "POST",
        "/pipelines/runs",
        {"json": {"pipeline": "flows.py:ok", "params": {"x": 2}, "executor": "inline", "project": "alpha"}},
    ),
    ("GET", "/api/v1/pipelines/runs/{run_id}"): lambda w: Call("GET", f"/pipelines/runs/{w.pipeline_run}"),
    ("POST", "/api/v1/pipelines/runs/{run_id}/retry"): lambda w: Call(
        "POST", f"/pipelines/runs/{_pipeline_run(w, 'bad').run_id}/retry", {"json": {"executor": "inline"}}
    ),
    ("GET", "/api/v1/pipelines/runs/{run_id}/steps/{step}"): lambda w: Call(
        "GET", f"/pipelines/runs/{w.pipeline_run}/steps/double"
    ),
    ("GET", "/api/v1/pipelines/runs/{run_id}/steps/{step}/log"): lambda w: Call(
        "GET", f"/pipelines/runs/{w.pipeline_run}/steps/double/log"
    ),
    ("GET", "/api/v1/lineage"): lambda w: Call("GET", "/lineage", {"params": {"reference": w.step_run}}),
    ("POST", "/api/v1/pipelines/schedules"): lambda w: Call(
        "POST",
        "/pipelines/schedules",
        {"json": {"name": w.fresh("s"), "pipeline": "flows.py:ok", "cron": "0 2 * * *", "project": "alpha"}},
    ),
    ("GET", "/api/v1/pipelines/schedules"): lambda _: Call(
        "GET", "/pipelines/schedules", shows_alpha=_names("schedules", "name", "sched-alpha")
    ),
    ("DELETE", "/api/v1/pipelines/schedules/{name}"): lambda w: Call("DELETE", _schedule(w)),
    ("GET", "/api/v1/pipelines/firings"): lambda _: Call(
        "GET", "/pipelines/firings", shows_alpha=_names("firings", "schedule", "sched-alpha")
    ),
    ("POST", "/api/v1/pipelines/schedules/{name}/fire"): lambda w: Call(
        "POST", "/pipelines/schedules/sched-alpha/fire", {"json": {"key": f"alert:{w.fresh('k')}", "reason": "r"}}
    ),
    ("POST", "/api/v1/features/plan"): lambda w: Call("POST", "/features/plan", {"json": _feature_apply(w)}),
    ("POST", "/api/v1/features/apply"): lambda w: Call("POST", "/features/apply", {"json": _feature_apply(w)}),
    ("GET", "/api/v1/features/definitions"): lambda w: Call(
        "GET", "/features/definitions", {"params": {"project": _features(w)}}
    ),
    ("GET", "/api/v1/features/definitions/{kind}/{name}"): lambda w: Call(
        "GET", "/features/definitions/feature_view/weather", {"params": {"project": _features(w)}}
    ),
    ("POST", "/api/v1/features/online"): lambda w: Call(
        "POST",
        "/features/online",
        {"json": {"features": ["weather:temp"], "entities": {"station_id": [1]}, "project": _features(w)}},
    ),
    ("POST", "/api/v1/features/views/{view}/push"): lambda w: Call(
        "POST",
        "/features/views/weather/push",
        {"json": {"rows": {"station_id": [3], "ts": ["2012-01-01T11:00:00Z"], "temp": [0.1]}, "project": _features(w)}},
    ),
    ("POST", "/api/v1/features/views/{view}/materialize"): lambda w: Call(
        "POST",
        "/features/views/weather/materialize",
        {"json": {"start": "2012-01-01", "end": "2012-01-02", "project": _features(w)}},
    ),
    ("GET", "/api/v1/features/views/{view}/materialization"): lambda w: Call(
        "GET", "/features/views/weather/materialization", {"params": {"project": _materialized(w)}}
    ),
}


def _schedule(w: World) -> str:
    name = w.fresh("s")
    w.admin("POST", "/pipelines/schedules", json={"name": name, "pipeline": "flows.py:ok", "cron": "0 2 * * *",
                                                  "project": "alpha"})  # fmt: skip
    return f"/pipelines/schedules/{name}"


# -- lifecycle operations and the binary metric series (issue 10/13 follow-ups) ---------------------------


def _fresh_experiment(w: World, deleted: bool = False) -> str:
    made = w.admin("POST", "/experiments", json={"name": w.fresh("e"), "project": "alpha"})["experiment"]["id"]
    if deleted:
        w.admin("DELETE", f"/experiments/{made}")
    return f"/experiments/{made}"


def _deleted_run(w: World) -> str:
    run = _open_run(w)
    w.admin("DELETE", run)
    return run


def _run_tag(w: World) -> str:
    key = w.fresh("tag")
    w.admin("POST", f"{_run(w)}/tags", json={"tags": {key: "1"}})
    return f"{_run(w)}/tags/{key}"


def _experiment_tag(w: World) -> str:
    key = w.fresh("tag")
    w.admin("POST", f"/experiments/{w.experiment_id}/tags", json={"tags": {key: "1"}})
    return f"/experiments/{w.experiment_id}/tags/{key}"


def _fresh_version(w: World) -> str:
    made = w.admin("POST", "/models/m-alpha/versions", json=_version_body(w))["model_version"]["version"]
    return f"/models/m-alpha/versions/{made}"


CALLS.update(
    {
        ("PATCH", "/api/v1/experiments/{experiment_id}"): lambda w: Call(
            "PATCH", _fresh_experiment(w), {"json": {"name": w.fresh("renamed")}}
        ),
        ("DELETE", "/api/v1/experiments/{experiment_id}"): lambda w: Call("DELETE", _fresh_experiment(w)),
        ("POST", "/api/v1/experiments/{experiment_id}/restore"): lambda w: Call(
            "POST", f"{_fresh_experiment(w, deleted=True)}/restore"
        ),
        ("POST", "/api/v1/experiments/{experiment_id}/tags"): lambda w: Call(
            "POST", f"/experiments/{w.experiment_id}/tags", {"json": {"tags": {"t": "1"}}}
        ),
        ("DELETE", "/api/v1/experiments/{experiment_id}/tags/{key:path}"): lambda w: Call("DELETE", _experiment_tag(w)),
        ("DELETE", "/api/v1/runs/{run_id}"): lambda w: Call("DELETE", _open_run(w)),
        ("POST", "/api/v1/runs/{run_id}/restore"): lambda w: Call("POST", f"{_deleted_run(w)}/restore"),
        ("DELETE", "/api/v1/runs/{run_id}/tags/{key:path}"): lambda w: Call("DELETE", _run_tag(w)),
        ("GET", "/api/v1/runs/{run_id}/metric-series/{key:path}"): lambda w: Call(
            "GET", f"{_run(w)}/metric-series/loss"
        ),
        ("DELETE", "/api/v1/models/{name}"): lambda w: Call(
            "DELETE",
            f"/models/{w.admin('POST', '/models', json={'name': w.fresh('m'), 'project': 'alpha'})['model']['name']}",
        ),
        ("DELETE", "/api/v1/models/{name}/tags/{key:path}"): lambda _: Call("DELETE", "/models/m-alpha/tags/team"),
        ("DELETE", "/api/v1/models/{name}/versions/{version}"): lambda w: Call("DELETE", _fresh_version(w)),
        ("DELETE", "/api/v1/models/{name}/versions/{version}/tags/{key:path}"): lambda _: Call(
            "DELETE", "/models/m-alpha/versions/1/tags/team"
        ),
    }
)

# -- MLflow's protocol: the same rules, served under /api/2.0/mlflow and its /ajax-api twin ---------------

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")


def _mlflow_admin(w: World, method: str, url: str, **kwargs: Any) -> Any:
    response = w.api.client.request(method, f"/api/2.0/mlflow{url}", headers=w.api.headers(), **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _alpha_experiment(w: World) -> str:
    return str(
        w.admin("POST", "/experiments", json={"name": w.fresh("mlflow-x"), "project": "alpha"})["experiment"]["id"]
    )


def _alpha_run(w: World) -> str:
    run_id: str = w.admin("POST", "/runs", json={"experiment_id": w.experiment_id})["run"]["id"]
    return run_id


def _run_tag_to_delete(w: World) -> Call:
    key = w.fresh("t")
    _mlflow_admin(w, "POST", "/runs/set-tag", json={"run_id": w.run_id, "key": key, "value": "v"})
    return Call("POST", "/runs/delete-tag", {"json": {"run_id": w.run_id, "key": key}})


def _experiment_tag_to_delete(w: World) -> Call:
    key = w.fresh("t")
    experiment = str(w.experiment_id)
    _mlflow_admin(w, "POST", "/experiments/set-experiment-tag", json={"experiment_id": experiment, "key": key})
    return Call("POST", "/experiments/delete-experiment-tag", {"json": {"experiment_id": experiment, "key": key}})


_RUN_PATH = "run -> experiment's project"
_EXPERIMENT_PATH = "experiment's project"
MLFLOW: dict[tuple[str, str], tuple[Rule, Callable[[World], Call]]] = {
    ("POST", "/experiments/create"): (
        Rule(E, "own", "the token's project (global tokens: the default project)"),
        lambda w: Call("POST", "/experiments/create", {"json": {"name": w.fresh("mlflow-e")}}),
    ),
    ("GET", "/experiments/get"): (
        Rule(V, "path", _EXPERIMENT_PATH),
        lambda w: Call("GET", "/experiments/get", {"params": {"experiment_id": str(w.experiment_id)}}),
    ),
    ("GET", "/experiments/get-by-name"): (
        Rule(V, "path", _EXPERIMENT_PATH),
        lambda _: Call("GET", "/experiments/get-by-name", {"params": {"experiment_name": "e"}}),
    ),
    ("POST", "/experiments/search"): (
        Rule(V, "listing", _EXPERIMENT_PATH),
        lambda w: Call(
            "POST",
            "/experiments/search",
            {"json": {"max_results": 50000}},
            lambda b: str(w.experiment_id) in [e["experiment_id"] for e in b.get("experiments", [])],
        ),
    ),
    ("POST", "/experiments/update"): (
        Rule(E, "path", _EXPERIMENT_PATH),
        lambda w: Call(
            "POST", "/experiments/update", {"json": {"experiment_id": _alpha_experiment(w), "new_name": w.fresh("r")}}
        ),
    ),
    ("POST", "/experiments/delete"): (
        Rule(E, "path", _EXPERIMENT_PATH),
        lambda w: Call("POST", "/experiments/delete", {"json": {"experiment_id": _alpha_experiment(w)}}),
    ),
    ("POST", "/experiments/restore"): (
        Rule(E, "path", _EXPERIMENT_PATH),
        lambda w: Call("POST", "/experiments/restore", {"json": {"experiment_id": _alpha_experiment(w)}}),
    ),
    ("POST", "/experiments/set-experiment-tag"): (
        Rule(E, "path", _EXPERIMENT_PATH),
        lambda w: Call(
            "POST", "/experiments/set-experiment-tag", {"json": {"experiment_id": str(w.experiment_id), "key": "k"}}
        ),
    ),
    ("POST", "/experiments/delete-experiment-tag"): (Rule(E, "path", _EXPERIMENT_PATH), _experiment_tag_to_delete),
    ("POST", "/runs/create"): (
        Rule(E, "path", "body.experiment_id -> experiment's project"),
        lambda w: Call("POST", "/runs/create", {"json": {"experiment_id": str(w.experiment_id)}}),
    ),
    ("GET", "/runs/get"): (
        Rule(V, "path", _RUN_PATH),
        lambda w: Call("GET", "/runs/get", {"params": {"run_id": w.run_id}}),
    ),
    ("POST", "/runs/update"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call("POST", "/runs/update", {"json": {"run_id": _alpha_run(w), "status": "FINISHED"}}),
    ),
    ("POST", "/runs/delete"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call("POST", "/runs/delete", {"json": {"run_id": _alpha_run(w)}}),
    ),
    ("POST", "/runs/restore"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call("POST", "/runs/restore", {"json": {"run_id": _alpha_run(w)}}),
    ),
    ("POST", "/runs/search"): (
        Rule(V, "path", "body.experiment_ids -> experiment's project"),
        lambda w: Call("POST", "/runs/search", {"json": {"experiment_ids": [str(w.experiment_id)]}}),
    ),
    ("POST", "/runs/log-metric"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call(
            "POST", "/runs/log-metric", {"json": {"run_id": w.run_id, "key": "m", "value": 1.0, "timestamp": 1}}
        ),
    ),
    ("POST", "/runs/log-parameter"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call(
            "POST", "/runs/log-parameter", {"json": {"run_id": w.run_id, "key": w.fresh("p"), "value": "1"}}
        ),
    ),
    ("POST", "/runs/set-tag"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call("POST", "/runs/set-tag", {"json": {"run_id": w.run_id, "key": "t", "value": "1"}}),
    ),
    ("POST", "/runs/delete-tag"): (Rule(E, "path", _RUN_PATH), _run_tag_to_delete),
    ("POST", "/runs/log-batch"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call(
            "POST",
            "/runs/log-batch",
            {"json": {"run_id": w.run_id, "metrics": [{"key": "b", "value": 1, "timestamp": 1, "step": 0}]}},
        ),
    ),
    ("POST", "/runs/log-inputs"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call(
            "POST",
            "/runs/log-inputs",
            {"json": {"run_id": w.run_id, "datasets": [{"dataset": {"name": "d", "digest": "abc", "source": "s"}}]}},
        ),
    ),
    ("POST", "/runs/outputs"): (
        Rule(E, "path", _RUN_PATH),
        lambda w: Call("POST", "/runs/outputs", {"json": {"run_id": w.run_id, "models": [{"model_id": "m-1"}]}}),
    ),
    ("GET", "/metrics/get-history"): (
        Rule(V, "path", _RUN_PATH),
        lambda w: Call("GET", "/metrics/get-history", {"params": {"run_id": w.run_id, "metric_key": "loss"}}),
    ),
    ("GET", "/metrics/get-history-bulk-interval"): (
        Rule(V, "path", _RUN_PATH),
        lambda w: Call(
            "GET", "/metrics/get-history-bulk-interval", {"params": {"run_ids": [w.run_id], "metric_key": "loss"}}
        ),
    ),
    ("GET", "/artifacts/list"): (
        Rule(V, "path", _RUN_PATH),
        lambda w: Call("GET", "/artifacts/list", {"params": {"run_id": w.run_id}}),
    ),
}
MLFLOW_ARTIFACTS: dict[tuple[str, str], tuple[Rule, Callable[[World], Call]]] = {
    ("PUT", "/artifacts/{path:path}"): (
        Rule(E, "path", "path's run -> experiment's project"),
        lambda w: Call(
            "PUT", f"/artifacts/{w.experiment_id}/{w.run_id}/artifacts/{w.fresh('f')}.txt", {"content": b"x"}
        ),
    ),
    ("GET", "/artifacts/{path:path}"): (
        Rule(V, "path", "path's run -> experiment's project"),
        lambda w: Call("GET", f"/artifacts/{w.experiment_id}/{w.run_id}/artifacts/a.txt"),
    ),
    ("GET", "/artifacts"): (
        Rule(V, "path", "path's run -> experiment's project"),
        lambda w: Call("GET", "/artifacts", {"params": {"path": f"{w.experiment_id}/{w.run_id}/artifacts"}}),
    ),
}


# MLflow's model registry and MLflow 3 logged models (server/mlflow/registry.py, logged_models.py).
_MODEL_PATH = "model's project"
_LOGGED_PATH = "logged model -> run -> experiment's project"


def _alpha_model(w: World) -> str:
    name = w.fresh("mlflow-m")
    w.admin("POST", "/models", json={"name": name, "project": "alpha"})
    return name


def _alpha_version(w: World) -> int:
    number: int = w.admin("POST", "/models/m-alpha/versions", json=_version_body(w))["model_version"]["version"]
    return number


def _alpha_logged_model(w: World) -> str:
    body = {"experiment_id": str(w.experiment_id), "source_run_id": w.run_id, "name": w.fresh("lm")}
    model_id: str = _mlflow_admin(w, "POST", "/logged-models", json=body)["model"]["info"]["model_id"]
    return model_id


def _logged_model_tag(w: World) -> Call:
    model_id = _alpha_logged_model(w)
    _mlflow_admin(w, "PATCH", f"/logged-models/{model_id}/tags", json={"tags": [{"key": "k", "value": "v"}]})
    return Call("DELETE", f"/logged-models/{model_id}/tags/k")


def _mv(w: World, version: int | str = 1, **extra: Any) -> dict[str, Any]:
    return {"json": {"name": "m-alpha", "version": str(version), **extra}}


def _latest(method: str) -> Callable[[World], Call]:
    kwargs = {"params": {"name": "m-alpha"}} if method == "GET" else {"json": {"name": "m-alpha"}}
    return lambda _: Call(method, "/registered-models/get-latest-versions", kwargs)


_REGISTRY_RULES: dict[tuple[str, str], tuple[Rule, Callable[[World], Call]]] = {
    ("POST", "/registered-models/create"): (
        Rule(E, "own", "the token's project (global tokens: the default project)"),
        lambda w: Call("POST", "/registered-models/create", {"json": {"name": w.fresh("mlflow-rm")}}),
    ),
    ("GET", "/registered-models/get"): (
        Rule(V, "path", _MODEL_PATH),
        lambda _: Call("GET", "/registered-models/get", {"params": {"name": "m-alpha"}}),
    ),
    ("PATCH", "/registered-models/update"): (
        Rule(E, "path", _MODEL_PATH),
        lambda _: Call("PATCH", "/registered-models/update", {"json": {"name": "m-alpha", "description": "d"}}),
    ),
    ("DELETE", "/registered-models/delete"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("DELETE", "/registered-models/delete", {"json": {"name": _alpha_model(w)}}),
    ),
    ("GET", "/registered-models/search"): (
        Rule(V, "listing", _MODEL_PATH),
        lambda _: Call(
            "GET",
            "/registered-models/search",
            {"params": {"filter": "name = 'm-alpha'"}},
            shows_alpha=_names("registered_models", "name", "m-alpha"),
        ),
    ),
    ("POST", "/registered-models/set-tag"): (
        Rule(E, "path", _MODEL_PATH),
        lambda _: Call("POST", "/registered-models/set-tag", {"json": {"name": "m-alpha", "key": "k", "value": "v"}}),
    ),
    ("DELETE", "/registered-models/delete-tag"): (
        Rule(E, "path", _MODEL_PATH),
        lambda _: Call("DELETE", "/registered-models/delete-tag", {"json": {"name": "m-alpha", "key": "k"}}),
    ),
    ("POST", "/registered-models/alias"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call(
            "POST", "/registered-models/alias", {"json": {"name": "m-alpha", "alias": w.fresh("a"), "version": "1"}}
        ),
    ),
    ("DELETE", "/registered-models/alias"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call(
            "DELETE",
            "/registered-models/alias",
            {"json": {"name": "m-alpha", "alias": _alias(w).rsplit("/", 1)[-1]}},
        ),
    ),
    ("GET", "/registered-models/alias"): (
        Rule(V, "path", _MODEL_PATH),
        lambda _: Call("GET", "/registered-models/alias", {"params": {"name": "m-alpha", "alias": "champion"}}),
    ),
    ("POST", "/registered-models/get-latest-versions"): (Rule(V, "path", _MODEL_PATH), _latest("POST")),
    ("GET", "/registered-models/get-latest-versions"): (Rule(V, "path", _MODEL_PATH), _latest("GET")),
    ("POST", "/model-versions/create"): (
        Rule(E, "path", "body.name -> model's project"),
        lambda w: Call(
            "POST",
            "/model-versions/create",
            {"json": {"name": "m-alpha", "source": f"runs:/{w.run_id}/{_version_body(w)['artifact_path']}"}},
        ),
    ),
    ("GET", "/model-versions/get"): (
        Rule(V, "path", _MODEL_PATH),
        lambda _: Call("GET", "/model-versions/get", {"params": {"name": "m-alpha", "version": "1"}}),
    ),
    ("PATCH", "/model-versions/update"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("PATCH", "/model-versions/update", _mv(w, description="d")),
    ),
    ("DELETE", "/model-versions/delete"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("DELETE", "/model-versions/delete", _mv(w, _alpha_version(w))),
    ),
    ("GET", "/model-versions/search"): (
        Rule(V, "listing", _MODEL_PATH),
        lambda _: Call(
            "GET",
            "/model-versions/search",
            {"params": {"filter": "name = 'm-alpha'"}},
            shows_alpha=_names("model_versions", "name", "m-alpha"),
        ),
    ),
    ("POST", "/model-versions/set-tag"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("POST", "/model-versions/set-tag", _mv(w, key="k", value="v")),
    ),
    ("DELETE", "/model-versions/delete-tag"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("DELETE", "/model-versions/delete-tag", _mv(w, key="k")),
    ),
    ("POST", "/model-versions/transition-stage"): (
        Rule(E, "path", _MODEL_PATH),
        lambda w: Call("POST", "/model-versions/transition-stage", _mv(w, 2, stage="Staging")),
    ),
    ("GET", "/model-versions/get-download-uri"): (
        Rule(V, "path", _MODEL_PATH),
        lambda _: Call("GET", "/model-versions/get-download-uri", {"params": {"name": "m-alpha", "version": "1"}}),
    ),
    ("POST", "/logged-models"): (
        Rule(E, "path", "body.source_run_id -> run -> experiment's project"),
        lambda w: Call(
            "POST", "/logged-models", {"json": {"experiment_id": str(w.experiment_id), "source_run_id": w.run_id}}
        ),
    ),
    ("POST", "/logged-models/search"): (
        Rule(V, "listing", "experiment's project"),
        lambda w: Call(
            "POST",
            "/logged-models/search",
            {"json": {"experiment_ids": [str(w.experiment_id)]}},
            shows_alpha=lambda body: bool(body["models"]),
        ),
    ),
    ("GET", "/logged-models/{model_id}"): (
        Rule(V, "path", _LOGGED_PATH),
        lambda w: Call("GET", f"/logged-models/{_alpha_logged_model(w)}"),
    ),
    ("PATCH", "/logged-models/{model_id}"): (
        Rule(E, "path", _LOGGED_PATH),
        lambda w: Call(
            "PATCH", f"/logged-models/{_alpha_logged_model(w)}", {"json": {"status": "LOGGED_MODEL_UPLOAD_FAILED"}}
        ),
    ),
    ("PATCH", "/logged-models/{model_id}/tags"): (
        Rule(E, "path", _LOGGED_PATH),
        lambda w: Call(
            "PATCH", f"/logged-models/{_alpha_logged_model(w)}/tags", {"json": {"tags": [{"key": "k", "value": "v"}]}}
        ),
    ),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key:path}"): (Rule(E, "path", _LOGGED_PATH), _logged_model_tag),
    ("POST", "/logged-models/{model_id}/params"): (
        Rule(E, "path", _LOGGED_PATH),
        lambda w: Call(
            "POST",
            f"/logged-models/{_alpha_logged_model(w)}/params",
            {"json": {"params": [{"key": "p", "value": "1"}]}},
        ),
    ),
}
MLFLOW |= _REGISTRY_RULES


def _prefixed(prefix: str, build: Callable[[World], Call]) -> Callable[[World], Call]:
    def call(w: World) -> Call:
        made = build(w)
        return Call(made.method, prefix + made.url, made.kwargs, made.shows_alpha)

    return call


for _prefixes, _table in (
    (MLFLOW_PREFIXES, MLFLOW),
    (("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"), MLFLOW_ARTIFACTS),
):
    for _prefix in _prefixes:
        for (_method, _path), (_rule, _build) in _table.items():
            RULES[(_method, _prefix + _path)] = _rule
            CALLS[(_method, _prefix + _path)] = _prefixed(_prefix, _build)
for _prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
    RULES[("GET", f"{_prefix}/server-info")] = Rule(None, "public", "-")
    CALLS[("GET", f"{_prefix}/server-info")] = lambda _, p=_prefix: Call("GET", f"{p}/server-info")


def _app_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_has_a_rule(world: World) -> None:
    routes = _app_routes(world.api.app)
    assert routes - set(RULES) == set(), "routes without an authorization rule: add them to RULES and CALLS"
    assert set(RULES) - routes == set(), "rules for routes the app no longer has"
    assert set(CALLS) == set(RULES)


CELLS = [
    pytest.param(route, role, where, id=f"{route[0]} {route[1]} {role.value} {where}")
    for route in RULES
    for role in Role
    for where in PROJECT_OF
]


@pytest.mark.parametrize(("route", "role", "where"), CELLS)
def test_authorization_cell(world: World, route: tuple[str, str], role: Role, where: Where) -> None:
    rule = RULES[route]
    call = CALLS[route](world)
    url = call.url if call.url.startswith(("/api/", "/ajax-api/", "/docs", "/metrics")) else f"{API}{call.url}"
    response = world.api.client.request(
        call.method, url, headers=world.api.headers(world.secrets[(role, where)]), **call.kwargs
    )
    want = expected(rule, role, where)
    assert response.status_code == want, response.text[:500]
    if want == 200 and call.shows_alpha is not None:
        body = response.text if route[1] == "/metrics" else response.json()
        assert call.shows_alpha(body) is (where != "other"), "a listing shows what the token may see, only that"
    if want in (403, 404) and "mlflow" in url:
        assert response.json()["error_code"] in ("PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST")
    elif want in (403, 404):
        assert response.json()["error"]["code"] in ("permission_denied", "not_found") or response.json()["error"][
            "code"
        ].endswith("_not_found")


def test_routes_that_need_a_token_refuse_none(world: World) -> None:
    for route, rule in RULES.items():
        if rule.role is None:
            continue
        call = CALLS[route](world)
        url = call.url if call.url.startswith(("/api/", "/ajax-api/", "/docs", "/metrics")) else f"{API}{call.url}"
        response = world.api.client.request(call.method, url, **call.kwargs)
        assert response.status_code == 401, route
