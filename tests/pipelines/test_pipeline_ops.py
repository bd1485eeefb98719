"""Pipelines through the server's REST API, with hostile and concurrent input: references outside the roots,
modules not allowed, bad params, concurrent retries of one run, a full server, and `kill -9` of a run's process."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopml.artifacts import open_artifact_store
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.store.schema import pipeline_runs
from loopml.tracking import TrackingService

ADMIN = "lml_pipeline_ops_admin_secret_000"
DEADLINE = 120.0
FLOWS = """
import time

import loopml as lm


@lm.step
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@lm.step
def boom(x: float) -> float:
    raise RuntimeError("boom")


@lm.pipeline
def sleepy(seconds: float = 0.0):
    return nap(seconds)


@lm.pipeline
def bad(seconds: float = 0.0):
    return boom(nap(seconds))
"""


class Server:
    def __init__(self, http: TestClient, app: Any, store: MetadataStore) -> None:
        self.http, self.app, self.store = http, app, store

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.http.request(method, f"/api/v1{url}", headers={"Authorization": f"Bearer {ADMIN}"}, **kwargs)

    def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.call(method, url, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, name: str, **params: Any) -> str:
        body = {"pipeline": f"flows.py:{name}", "params": params, "executor": "inline"}
        return str(self.ok("POST", "/pipelines/runs", json=body)["pipeline_run"]["run_id"])

    def wait(self, run_id: str, until: Any) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            run = self.ok("GET", f"/pipelines/runs/{run_id}")["pipeline_run"]
            if until(run):
                return dict(run)
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} never got there: {run}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flows.py").write_text(FLOWS)
    (tmp_path / "outside.py").write_text(FLOWS)
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    governance = GovernanceService(store)
    governance.bootstrap_admin(ADMIN)
    settings = Settings(
        home=tmp_path, pipeline_roots=str(tmp_path / "flows"), pipeline_modules="tests.pipelines", pipeline_workers=2
    )
    app = build_app(TrackingService(store, blobs), governance, settings)
    with TestClient(app) as http:
        yield Server(http, app, store)
        app.state.launcher.wait_idle(DEADLINE)
    store.close()


def test_references_outside_the_roots_or_modules_are_refused(server: Server, tmp_path: Path) -> None:
    for pipeline, why in [
        (f"{tmp_path / 'outside.py'}:sleepy", "outside the server's pipeline roots"),
        ("../outside.py:sleepy", "outside the server's pipeline roots"),
        ("missing.py:sleepy", "does not exist under the server's pipeline roots"),
        ("os:system", "not among the server's pipeline modules"),
        ("flows.py:sleepy; rm -rf /", "not `module:function`"),
        ("flows.py:nothing", "has no attribute 'nothing'"),
    ]:
        response = server.call("POST", "/pipelines/runs", json={"pipeline": pipeline, "executor": "inline"})
        assert response.status_code == 400, (pipeline, response.text)
        assert why in response.json()["error"]["message"], (pipeline, response.text)
    schedule = {"name": "s", "pipeline": f"{tmp_path / 'outside.py'}:sleepy", "cron": "0 2 * * *"}
    response = server.call("POST", "/pipelines/schedules", json=schedule)
    assert response.status_code == 400 and "outside" in response.json()["error"]["message"]
    assert server.ok("GET", "/pipelines/runs")["pipeline_runs"] == []


def test_bad_params_and_bodies_are_400s(server: Server) -> None:
    for body in [
        {"pipeline": "flows.py:sleepy", "params": {"nope": 1}, "executor": "inline"},
        {"pipeline": "flows.py:sleepy", "params": [1], "executor": "inline"},
        {"pipeline": "flows.py:sleepy", "executor": "warp"},
        {"pipeline": "flows.py:sleepy", "cache": "yes"},
        {"pipeline": 7},
    ]:
        response = server.call("POST", "/pipelines/runs", json=body)
        assert response.status_code == 400, (body, response.text)
    for url in ["/pipelines/runs/" + "0" * 32, "/pipelines/runs/not-a-run/retry"]:
        assert server.call("POST" if url.endswith("retry") else "GET", url).status_code == 404
    assert server.call("GET", "/lineage", params={"reference": "models:/absent/1"}).status_code == 404


def test_concurrent_retries_of_one_run_one_wins(server: Server) -> None:
    failed = server.submit("bad")
    server.wait(failed, lambda r: r["status"] != "RUNNING")
    answers: list[Any] = []
    barrier = threading.Barrier(3)

    def retry() -> None:
        barrier.wait()
        answers.append(server.call("POST", f"/pipelines/runs/{failed}/retry", json={}))

    threads = [threading.Thread(target=retry) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses.count(200) == 1, [a.text for a in answers]
    losers = [a.json()["error"] for a in answers if a.status_code != 200]
    assert all(e["code"] in ("already_exists", "server_busy") for e in losers), losers


def test_a_full_server_says_so(server: Server) -> None:
    first, second = server.submit("sleepy", seconds=30), server.submit("sleepy", seconds=30)
    response = server.call("POST", "/pipelines/runs", json={"pipeline": "flows.py:sleepy", "executor": "inline"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_busy"
    assert "LOOPML_PIPELINE_WORKERS" in response.json()["error"]["message"]
    for run_id in (first, second):
        _kill_holder(server, run_id)


def _kill_holder(server: Server, run_id: str) -> int:
    with server.store.engine.connect() as conn:
        holder = conn.execute(pipeline_runs.select().where(pipeline_runs.c.run_id == run_id)).one().holder
    pid = int(holder.split(":")[1])
    os.kill(pid, signal.SIGKILL)
    return pid


def test_kill_9_of_a_runs_process_fails_the_run(server: Server) -> None:
    from loopml.domain import Principal, Role

    run_id = server.submit("sleepy", seconds=60)  # answered once the run exists and its process holds it
    _kill_holder(server, run_id)
    run = server.wait(run_id, lambda r: r["status"] != "RUNNING")  # the launcher reaps the child and sweeps
    assert run["status"] == "FAILED"
    assert all(s["state"] == "killed" and "exited before the run ended" in s["error"] for s in run["steps"])
    admin = Principal(actor="sweeper", role=Role.ADMIN, project=None)
    assert server.app.state.pipelines.sweep(admin, stale_seconds=60) == []  # judged once
    retried = server.ok("POST", f"/pipelines/runs/{run_id}/retry", json={"executor": "inline"})["pipeline_run"]
    assert retried["retry_of"] == run_id
    _kill_holder(server, retried["run_id"])
