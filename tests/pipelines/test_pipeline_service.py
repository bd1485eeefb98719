"""PipelineService: roles and project scope on every operation, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pipeline_flows as flows
import pytest

from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role, RunStatus
from loopml.errors import InvalidInput, PermissionDenied, PipelineNotFound, StepRunNotFound
from loopml.pipelines import PipelineService, run_pipeline
from loopml.store import MetadataStore

ADMIN = Principal("ann", Role.ADMIN, None)
RED_EDITOR = Principal("bob", Role.EDITOR, "red")
RED_VIEWER = Principal("cyd", Role.VIEWER, "red")
BLUE_EDITOR = Principal("dan", Role.EDITOR, "blue")


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[PipelineService]:
    store = MetadataStore.open(db_url)
    yield PipelineService(store, open_artifact_store(str(tmp_path / "blobs")))
    store.close()


def test_roles_and_projects_on_pipeline_runs(service: PipelineService, tmp_path: Path) -> None:
    log = str(tmp_path / "ran.txt")
    red = run_pipeline(service, RED_EDITOR, flows.arithmetic, {"n": 3, "log": log}, "inline")
    assert red.status == "FINISHED"
    assert service.get_run(RED_VIEWER, red.run_id).run_id == red.run_id  # a viewer reads
    assert service.step_log(RED_VIEWER, red.run_id, "numbers") == "making 3 numbers\n"
    assert [r.run_id for r in service.list_runs(RED_VIEWER)] == [red.run_id]
    assert [r.run_id for r in service.list_runs(ADMIN, project="red")] == [red.run_id]

    with pytest.raises(PermissionDenied):  # running needs editor
        run_pipeline(service, RED_VIEWER, flows.arithmetic, {"n": 3, "log": log}, "inline")
    with pytest.raises(PipelineNotFound):  # another project's run is not there
        service.get_run(BLUE_EDITOR, red.run_id)
    with pytest.raises(PipelineNotFound):
        service.step_log(BLUE_EDITOR, red.run_id, "numbers")
    with pytest.raises(PipelineNotFound):
        service.finish_run(BLUE_EDITOR, red.run_id, RunStatus.FAILED)
    with pytest.raises(PipelineNotFound):
        run_pipeline(service, BLUE_EDITOR, flows.arithmetic, {"n": 3, "log": log}, "inline", retry_of=red.run_id)
    with pytest.raises(PermissionDenied):
        service.list_runs(BLUE_EDITOR, project="red")
    assert service.list_runs(BLUE_EDITOR) == []
    with pytest.raises(StepRunNotFound, match="has no step 'nope'"):
        service.step_log(RED_VIEWER, red.run_id, "nope")

    blue = run_pipeline(service, BLUE_EDITOR, flows.arithmetic, {"n": 3, "log": log}, "inline")
    assert {s.state.value for s in blue.steps} == {"finished"}  # red's cache is not blue's
    assert len(service.list_runs(ADMIN)) == 2


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.get_run(ADMIN, "../etc"), PipelineNotFound),
        (lambda s: s.get_run(ADMIN, "0" * 32), PipelineNotFound),
        (lambda s: s.list_runs(ADMIN, limit=0), InvalidInput),
        (lambda s: s.list_runs(ADMIN, status="DONE"), InvalidInput),
        (lambda s: s.list_runs(ADMIN, pipeline="bad\nname"), InvalidInput),
        (lambda s: s.start_run(ADMIN, "p", "m:f", "inline", {}, trigger={"no": "kind"}), InvalidInput),
    ],
)
def test_malformed_requests_are_4xx_errors(service: PipelineService, call: object, error: type) -> None:
    with pytest.raises(error):
        call(service)  # type: ignore[operator]
