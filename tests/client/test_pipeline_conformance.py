"""Pipelines through both backends: runs submitted by reference (run in a child process), retries, step runs and
their logs, lineage and schedules. The same tests run embedded and over HTTP against the server's operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import loopml
from loopml.api import OPERATIONS, Operation
from loopml.artifacts import open_artifact_store
from loopml.client.local_backend import LocalBackend
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = "lml_conformance_admin_secret"


def record_operations(backend: object) -> set[str]:
    """The names of the operations `backend.call` sends from now on (as tests/client/conftest.py records them)."""
    sent: set[str] = set()
    call = backend.call  # type: ignore[attr-defined]

    def recording_call(op: Operation[Any], /, **arguments: Any) -> Any:
        sent.add(op.name)
        return call(op, **arguments)

    backend.call = recording_call  # type: ignore[attr-defined]
    return sent


def _check_operations(request: pytest.FixtureRequest, sent: set[str]) -> None:
    marker = request.node.get_closest_marker("operations")
    named = set(marker.args) if marker else set()
    assert named <= set(OPERATIONS), f"unknown operations {sorted(named - set(OPERATIONS))}"
    assert named <= sent, f"the test names operations it never sent: {sorted(named - sent)}"


FLOWS = """
import loopml as lm


@lm.step
def double(x: int) -> int:
    print("doubling", x)
    return 2 * x


@lm.step
def boom(y: int, fail: bool) -> int:
    if fail:
        raise RuntimeError("boom on purpose")
    return y + 1


@lm.pipeline(schedule="0 2 * * *")
def ok(x: int = 1):
    return double(x)


@lm.pipeline
def flaky(x: int = 1, fail: bool = True):
    return boom(double(x), fail)
"""

DEADLINE = 120.0


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[loopml.Client]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flows.py").write_text(FLOWS)
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    settings = Settings(home=tmp_path, pipeline_roots=str(tmp_path / "flows"), pipeline_workers=4)
    if request.param == "local":
        made = loopml.Client(backend=LocalBackend(store, blobs, settings=settings))
        sent = record_operations(made.backend)
        yield made
        made.backend.launcher.wait_idle(DEADLINE)  # type: ignore[attr-defined]
        made.close()
        _check_operations(request, sent)
        return
    tracking, governance = TrackingService(store, blobs), GovernanceService(store)
    governance.bootstrap_admin(ADMIN)
    app = build_app(tracking, governance, settings)
    with TestClient(app) as http:
        made = loopml.Client(token=ADMIN, http_client=http)
        sent = record_operations(made.backend)
        yield made
        app.state.launcher.wait_idle(DEADLINE)
        made.close()
    _check_operations(request, sent)


def _flows(client: loopml.Client, tmp_path: Path) -> str:
    """The reference each backend gives: the server resolves it under its roots, the embedded client as a path."""
    if type(client.backend).__name__ == "LocalBackend":
        return f"{tmp_path / 'flows' / 'flows.py'}"
    return "flows.py"


@pytest.mark.operations("submit_pipeline_run", "get_pipeline_run", "list_pipeline_runs", "get_step_run", "get_step_log")
def test_a_submitted_run_runs_in_its_own_process_and_reads_back(client: loopml.Client, tmp_path: Path) -> None:
    run = client.pipelines.submit(f"{_flows(client, tmp_path)}:ok", {"x": 21}, executor="inline")
    assert run.status == "RUNNING" and run.record.trigger["kind"] == "submit"
    done = client.pipelines.wait(run.id, timeout=DEADLINE, poll_seconds=0.1)
    assert done.status == "FINISHED", done
    assert done.steps["double"].state.value == "finished"
    assert client.pipelines.step(run.id, "double").run_id == done.steps["double"].run_id
    assert "doubling 21" in client.pipelines.logs(run.id, "double")
    listed = client.pipelines.runs("ok")
    assert [r.run_id for r in listed] == [run.id]
    assert client.pipelines.runs("ok", status="FAILED") == []


@pytest.mark.operations("submit_pipeline_run", "retry_pipeline_run", "get_pipeline_run")
def test_retry_reuses_finished_steps_and_a_run_is_retried_once(client: loopml.Client, tmp_path: Path) -> None:
    first = client.pipelines.wait(
        client.pipelines.submit(f"{_flows(client, tmp_path)}:flaky", {"x": 2}, executor="inline").id,
        timeout=DEADLINE,
        poll_seconds=0.1,
    )
    assert first.status == "FAILED"
    assert "boom on purpose" in (first.steps["boom"].error or "")
    retried = client.pipelines.retry(first.id, wait=False)
    assert retried.record.retry_of == first.id
    done = client.pipelines.wait(retried.id, timeout=DEADLINE, poll_seconds=0.1)
    assert done.steps["double"].state.value == "cached"  # not recomputed
    assert done.steps["boom"].state.value == "failed"  # same params: fails again, on its own
    with pytest.raises(loopml.errors.AlreadyExists, match=f"already retried as run {retried.id}"):
        client.pipelines.retry(first.id, wait=False)


@pytest.mark.operations("submit_pipeline_run")
def test_bad_submissions_are_refused_before_anything_runs(client: loopml.Client, tmp_path: Path) -> None:
    flows = _flows(client, tmp_path)
    with pytest.raises(loopml.errors.InvalidPipeline, match="has no attribute 'nothing'"):
        client.pipelines.submit(f"{flows}:nothing")
    with pytest.raises(loopml.errors.InvalidPipeline, match=r"unexpected|argument|parameter"):
        client.pipelines.submit(f"{flows}:ok", {"y": 1})
    with pytest.raises(loopml.errors.InvalidInput, match="unknown executor"):
        client.pipelines.submit(f"{flows}:ok", executor="warp")
    with pytest.raises(loopml.errors.InvalidPipeline, match="not `module:function`"):
        client.pipelines.submit("no reference at all")
    assert client.pipelines.runs() == []


@pytest.mark.operations("submit_pipeline_run", "get_lineage")
def test_lineage_of_a_step_run(client: loopml.Client, tmp_path: Path) -> None:
    run = client.pipelines.submit(f"{_flows(client, tmp_path)}:ok", {"x": 3}, executor="inline")
    done = client.pipelines.wait(run.id, timeout=DEADLINE, poll_seconds=0.1)
    step = done.steps["double"]
    found = client.pipelines.lineage(step.run_id)
    assert found.subject == f"step:{step.run_id}"
    assert [s.run_id for s in found.steps] == [step.run_id]
    assert found.steps[0].components == step.components
    with pytest.raises(loopml.errors.InvalidInput, match="lineage subject"):
        client.pipelines.lineage("nonsense")


@pytest.mark.operations("create_schedule", "list_schedules", "delete_schedule", "fire_schedule", "list_firings")
def test_schedules_through_the_client(client: loopml.Client, tmp_path: Path) -> None:
    if type(client.backend).__name__ == "LocalBackend":  # the pipeline's own schedule= is read from the local file
        made = client.pipelines.schedule("nightly", f"{_flows(client, tmp_path)}:ok", params={"x": 2})
    else:
        with pytest.raises(loopml.errors.InvalidInput, match="give cron= or dataset="):
            client.pipelines.schedule("nightly", "flows.py:ok")
        made = client.pipelines.schedule("nightly", "flows.py:ok", cron="0 2 * * *", params={"x": 2})
    assert made.cron == "0 2 * * *" and made.pipeline.endswith("flows.py:ok")
    assert [s.name for s in client.pipelines.schedules()] == ["nightly"]
    fired = client.pipelines.fire("nightly", "alert:1", "drift")
    assert fired is not None and fired.key == "alert:1"
    assert client.pipelines.fire("nightly", "alert:1", "drift") is None  # an event delivered twice fires once
    assert [f.key for f in client.pipelines.firings("nightly")] == ["alert:1"]
    with pytest.raises(loopml.errors.InvalidInput, match="cron"):
        client.pipelines.schedule("broken", f"{_flows(client, tmp_path)}:ok", cron="61 * * * *")
    assert client.pipelines.unschedule("nightly").name == "nightly"
    assert client.pipelines.schedules() == []
    with pytest.raises(loopml.errors.ScheduleNotFound):
        client.pipelines.unschedule("nightly")
