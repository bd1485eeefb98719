"""Lifecycle operations (rename, delete, restore, tag removal) and the binary metric series, the same on the
embedded backend and over HTTP."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import loopml
from loopml.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    ModelNotFound,
    ModelVersionNotFound,
    NotFound,
    ResourceInUse,
    RunNotFound,
    TagNotFound,
)


@pytest.mark.operations(
    "rename_experiment",
    "delete_experiment",
    "restore_experiment",
    "set_experiment_tags",
    "delete_experiment_tag",
    "list_experiments",
)
def test_experiments_are_renamed_tagged_deleted_and_restored(client: loopml.Client) -> None:
    bike = client.experiments.get_or_create("bike")
    client.experiments.get_or_create("taxi")
    renamed = client.experiments.rename(bike.id, "bike-hourly")
    assert (renamed.id, renamed.name) == (bike.id, "bike-hourly")
    assert client.experiments.find("bike-hourly").id == bike.id
    with pytest.raises(AlreadyExists):
        client.experiments.rename(bike.id, "taxi")
    with pytest.raises(InvalidInput):  # InvalidName embedded, InvalidRequest at the HTTP edge: both say what to fix
        client.experiments.rename(bike.id, "")
    tagged = client.experiments.set_tags(bike.id, {"team": "demand", "tier": 1})
    assert tagged.tags == {"team": "demand", "tier": "1"}
    assert client.experiments.delete_tag(bike.id, "tier").tags == {"team": "demand"}

    kept = client.runs.create(bike.id, "kept")
    earlier = client.runs.create(bike.id, "deleted-before")
    client.runs.delete(earlier.id)
    deleted = client.experiments.delete(bike.id)
    assert deleted.deleted_at is not None
    assert client.experiments.delete(bike.id).deleted_at == deleted.deleted_at  # deleting again changes nothing
    assert [e.name for e in client.experiments.list()] == ["taxi"]
    assert [e.name for e in client.experiments.list(view_type="deleted_only")] == ["bike-hourly"]
    assert sorted(e.name for e in client.experiments.list(view_type="all")) == ["bike-hourly", "taxi"]
    assert client.runs.get(kept.id).deleted_at is not None  # its live runs went with it
    with pytest.raises(InvalidInput, match="deleted"):
        client.runs.create(bike.id)
    with pytest.raises(InvalidInput, match="view_type"):
        client.experiments.list(view_type="everything")  # type: ignore[arg-type]

    assert client.experiments.restore(bike.id).deleted_at is None
    assert client.runs.get(kept.id).deleted_at is None
    assert client.runs.get(earlier.id).deleted_at is not None  # deleted before the experiment: stays deleted
    with pytest.raises(ExperimentNotFound):
        client.experiments.delete(987_654)
    actions = [e.action for e in client.audit.events() if e.entity_type == "experiment"]
    for action in ("experiment.rename", "experiment.set_tags", "experiment.delete", "experiment.restore"):
        assert action in actions


@pytest.mark.operations("delete_run", "restore_run", "delete_run_tag", "search_runs")
def test_deleted_runs_leave_searches_until_restored(client: loopml.Client) -> None:
    live = client.runs.create("runs", "live", tags={"team": "demand", "keep": "1"})
    gone = client.runs.create("runs", "gone")
    deleted = client.runs.delete(gone.id)
    assert deleted.deleted_at is not None and client.runs.delete(gone.id).deleted_at == deleted.deleted_at
    assert [r.name for r in client.runs.search("runs").items] == ["live"]
    assert [r.name for r in client.runs.search("runs", view_type="deleted_only").items] == ["gone"]
    assert sorted(r.name for r in client.runs.search("runs", view_type="all").items) == ["gone", "live"]
    with pytest.raises(InvalidInput, match="restore it"):
        client.runs.log_params(gone.id, {"depth": 3})  # a deleted run takes no more data
    assert client.runs.restore(gone.id).deleted_at is None
    assert sorted(r.name for r in client.runs.search("runs").items) == ["gone", "live"]

    assert client.runs.delete_tag(live.id, "team").tags == {"keep": "1"}
    with pytest.raises(TagNotFound):
        client.runs.delete_tag(live.id, "team")
    with pytest.raises(RunNotFound):
        client.runs.delete("0" * 32)
    with pytest.raises((NotFound, InvalidInput)):  # no such run, or (over HTTP) no such route
        client.runs.delete("../../etc/passwd")
    actions = [e.action for e in client.audit.events() if e.entity_id == gone.id]
    assert actions.count("run.delete") == 1 and actions.count("run.restore") == 1


def _logged_model(client: loopml.Client, tmp_path: Path, rmse: float) -> tuple[str, str]:
    manifest = tmp_path / f"manifest-{rmse}.json"
    manifest.write_text(f'{{"flavor": "sklearn", "rmse": {rmse}}}')
    run = client.runs.create("registry")
    record = client.runs.log_artifact(run.id, manifest, "model/loopml-model.json")
    client.runs.end(run.id)
    return run.id, record.digest


@pytest.mark.operations(
    "delete_model", "delete_model_tag", "delete_model_version", "delete_model_version_tag", "deploy"
)
def test_models_and_versions_are_deleted_unless_in_use(client: loopml.Client, tmp_path: Path) -> None:
    client.models.create("bike", tags={"team": "demand", "tier": "1"})
    for rmse in (41.0, 40.0, 39.0):
        run_id, digest = _logged_model(client, tmp_path, rmse)
        client.models.create_version("bike", run_id, "model", digest, "sklearn", tags={"seed": 1, "ok": "y"})
    assert client.models.delete_tag("bike", "tier").tags == {"team": "demand"}
    assert client.models.delete_version_tag("bike", 1, "ok").tags == {"seed": "1"}

    client.models.set_alias("bike", "champion", 2)
    with pytest.raises(ResourceInUse, match="champion"):
        client.models.delete_version("bike", 2)  # aliased: move or delete the alias first
    client.deployments.deploy("bike-demand", "bike/1")
    with pytest.raises(ResourceInUse, match="bike-demand"):
        client.models.delete_version("bike", 1)
    with pytest.raises(ResourceInUse, match="bike-demand"):
        client.models.delete("bike")
    assert [v.version for v in client.models.versions("bike")] == [3, 2, 1]  # nothing went

    client.models.delete_version("bike", 3)
    with pytest.raises(ModelVersionNotFound):
        client.models.get_version("bike", 3)
    with pytest.raises(ModelVersionNotFound):
        client.models.delete_version("bike", 3)

    client.models.create("churn")
    run_id, digest = _logged_model(client, tmp_path, 50.0)
    client.models.create_version("churn", run_id, "model", digest, "sklearn")
    client.models.set_alias("churn", "champion", 1)
    client.models.delete("churn")  # no deployment: goes with its versions and aliases
    with pytest.raises(ModelNotFound):
        client.models.get("churn")
    with pytest.raises(ModelNotFound):
        client.models.delete("churn")
    actions = [e.action for e in client.audit.events() if e.action.startswith(("model.", "model_version."))]
    for action in ("model.delete_tag", "model_version.delete", "model.delete_alias", "model.delete"):
        assert action in actions
    assert client.audit.verify() == []


@pytest.mark.operations("metric_series", "metric_history")
def test_a_metric_series_is_the_history_as_columns(client: loopml.Client) -> None:
    run = client.runs.create("series")
    steps = [5, 1, 3, 1, 0]
    values = [0.5, math.nan, math.inf, -math.inf, 1e-300]
    for step, value in zip(steps, values, strict=True):
        client.runs.log_metric(run.id, "val/loss", value, step=step, timestamp=1_700_000_000_000 + step)
    series = client.runs.series(run.id, "val/loss")
    history = client.runs.history(run.id, "val/loss")
    assert series.key == "val/loss" and len(series) == len(history) == 5
    assert list(series.steps) == [m.step for m in history] == [0, 1, 1, 3, 5]
    assert list(series.timestamps) == [m.timestamp for m in history]
    assert np.array_equal(np.asarray(series.values), [m.value for m in history], equal_nan=True)
    as_numpy = np.frombuffer(series.values, dtype=np.float64)  # the column is a buffer: no copy
    assert as_numpy[0] == 1e-300 and math.isnan(as_numpy[1]) and as_numpy[2] == -math.inf

    empty = client.runs.series(run.id, "never-logged")
    assert len(empty) == 0 and empty.key == "never-logged"
    with pytest.raises(RunNotFound):
        client.runs.series("f" * 32, "val/loss")
