"""`kill -9` of a real `loopml server` in the middle of retraining loops: the restarted server fails a loop
cut off in training (its pipeline run too) and resumes one rolling out without deploying it again."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.artifacts import open_artifact_store
from loopml.deploy import DeployService
from loopml.domain import Principal, Role
from loopml.domain.monitoring import MonitorWindow
from loopml.monitoring import MonitoringService
from loopml.pipelines import PipelineService, load_pipeline, run_pipeline
from loopml.registry import RegistryService
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

from .conftest import ADMIN, ServerProcess, free_port

pytestmark = pytest.mark.slow
LOCAL = Principal("seed", Role.ADMIN, None)
DEADLINE = 120.0

PIPELINE = """
import time
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LinearRegression

import loopml as lm


@lm.step(cache=False)
def train(hold: str = "", trigger: dict | None = None) -> lm.Model:
    deadline = time.monotonic() + 120
    while hold and Path(hold).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    x = pd.DataFrame({"temp": [float(i) for i in range(20)]})
    return lm.Model(LinearRegression().fit(x, 3 * x["temp"]), name="toy", input_example=x.head(3), register="toy")


@lm.pipeline
def retrain(hold: str = "", trigger: dict | None = None):
    return train(hold, trigger=trigger)
"""


def _wait(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class _Api:
    """One request per call (no connection outlives a killed server)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.server.uri}/api/v1{path}"
        return httpx.request(method, url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._call("POST", path, **kwargs)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    home = tmp_path / "home"
    process = ServerProcess(
        home=home, database_url=f"sqlite:///{home / 'loopml.db'}", port=free_port(),
        extra_env={
            "LOOPML_RETRAIN_INTERVAL_SECONDS": "0.2", "LOOPML_RETRAIN_LEASE_SECONDS": "1.5",
            "LOOPML_RETRAIN_STALE_SECONDS": "3", "LOOPML_MONITOR_INTERVAL_SECONDS": "3600",
        },
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def test_kill_9_in_training_and_in_rollout(sqlite_server: ServerProcess, tmp_path: Path) -> None:
    home = sqlite_server.home
    home.mkdir(parents=True)
    store = MetadataStore.open(sqlite_server.database_url)
    artifacts = open_artifact_store((home / "artifacts").resolve().as_uri())
    registry = RegistryService(store)
    file = tmp_path / "toy_pipeline.py"
    file.write_text(textwrap.dedent(PIPELINE))
    run_pipeline(PipelineService(store, artifacts), LOCAL, load_pipeline(f"{file}:retrain"), {}, "inline")
    registry.set_alias(LOCAL, "toy", "champion", 1)
    deploy = DeployService(store, registry, home / "request-log")
    deploy.deploy(LOCAL, "toy-dep", "toy@champion")
    MonitoringService(store, artifacts, registry).create_monitor(LOCAL, "toy-mon", "toy-dep", window="1h")
    hold = tmp_path / "hold"
    hold.touch()

    def breach(start: int) -> None:
        at = now_ms()
        with store.write("monitor-scheduler") as unit:
            unit.monitors.put_window(
                MonitorWindow("toy-mon", start * 3_600_000, (start + 1) * 3_600_000, 10, 0, "toy", 1, {}, None,
                              {"drift": True}, at, at)
            )  # fmt: skip

    sqlite_server.start()
    api = _Api(sqlite_server)

    def loops() -> list[dict[str, Any]]:
        answer = api.get("/retrain/loops", params={"policy": "toy"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["loops"])

    policy = {
        "name": "toy", "monitor": "toy-mon", "pipeline": f"{file}:retrain", "triggers": ["drift:1"],
        "cooldown": "0s", "max_loops": 10, "analysis_seconds": 3600, "params": {"hold": str(hold)},
    }  # fmt: skip
    assert api.post("/retrain/policies", json=policy).status_code == 200
    breach(0)
    first = _wait("training", lambda: [x for x in loops() if x["state"] == "training" and x["pipeline_run_id"]])[0]
    sqlite_server.kill_hard()  # in training
    sqlite_server.start()
    failed = _wait("the cut-off loop to fail", lambda: [x for x in loops() if x["state"] == "failed"])[0]
    assert failed["id"] == first["id"] and "stopped before the pipeline finished" in failed["error"]
    run = api.get(f"/runs/{first['pipeline_run_id']}").json()["run"]
    assert run["status"] == "FAILED"  # the pipeline run is not left RUNNING either

    hold.unlink()
    breach(1)
    rolling = _wait("a canary", lambda: [x for x in loops() if x["state"] == "rolling_out" and x["rollout"]])[0]
    revisions = len(deploy.history(LOCAL, "toy-dep"))
    versions = [v.version for v in registry.search_versions(LOCAL, name="toy").items]
    sqlite_server.kill_hard()  # rolling out (the canary waits for traffic to analyse)
    sqlite_server.start()
    time.sleep(2)  # several passes of the restarted controller
    resumed = api.get(f"/retrain/loops/{rolling['id']}").json()["loop"]
    assert resumed["state"] == "rolling_out" and resumed["rollout"] == rolling["rollout"]
    assert len(deploy.history(LOCAL, "toy-dep")) == revisions  # no rollout started twice
    assert [v.version for v in registry.search_versions(LOCAL, name="toy").items] == versions  # registered once
    assert api.post("/deployments/toy-dep/rollback", json={"reason": "test"}).status_code == 200
    ended = _wait(
        "the rolled-back loop to fail",
        lambda: [x for x in loops() if x["id"] == rolling["id"] and x["state"] == "failed"],
    )
    assert "rolled back" in ended[0]["error"]
    assert registry.get_alias(LOCAL, "toy", "champion").version == 1
    store.close()
