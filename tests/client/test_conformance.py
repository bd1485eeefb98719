"""One scenario suite, run against both backends: the embedded SDK and the server must never drift apart."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.client import fluent
from loopml.domain import ModelVersionStatus, Run, RunStatus
from loopml.errors import (
    AliasNotFound,
    AlreadyExists,
    ArtifactNotFound,
    DeliveryFailed,
    ExperimentNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidName,
    InvalidPath,
    ModelNotFound,
    ModelVersionNotFound,
    ParamConflict,
    RunNotFound,
)


@pytest.mark.operations("get_experiment", "get_or_create_experiment", "list_experiments")
def test_experiments_are_created_once_and_listed(client: loopml.Client) -> None:
    first = client.experiments.get_or_create("bike-demand")
    assert client.experiments.get_or_create("bike-demand") == first
    assert client.experiments.find("bike-demand") == first
    assert client.experiments.get(first.id) == first
    assert first.project == "default"
    other = client.experiments.get_or_create("bike-demand", project="marketing")
    assert other.id != first.id
    assert [e.name for e in client.experiments.list("marketing")] == ["bike-demand"]
    with pytest.raises(ExperimentNotFound):
        client.experiments.find("nope")


@pytest.mark.operations("create_run", "end_run", "metric_history")
def test_run_lifecycle_with_params_tags_and_metrics(client: loopml.Client) -> None:
    run = client.runs.create("bike-demand", "baseline", params={"max_depth": 6, "lr": 0.1}, tags={"team": "x"})
    assert run.status is RunStatus.RUNNING and run.params == {"max_depth": "6", "lr": "0.1"}
    for step in range(50):
        client.runs.log_metric(run.id, "rmse", 100.0 - step, step=step)
    client.runs.log_metrics(run.id, {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}, step=1)
    ended = client.runs.end(run.id)
    assert ended.status is RunStatus.FINISHED and ended.end_time is not None
    assert ended.metrics["rmse"] == 51.0 and ended.metrics["inf"] == math.inf and ended.metrics["ninf"] == -math.inf
    assert math.isnan(ended.metrics["nan"])
    history = client.runs.history(run.id, "rmse")
    assert [(m.step, m.value) for m in history] == [(s, 100.0 - s) for s in range(50)]
    assert ended.tags["team"] == "x"


@pytest.mark.operations("log_params", "set_tags", "get_run")
def test_params_are_write_once_on_every_backend(client: loopml.Client) -> None:
    run = client.runs.create("e")
    client.runs.log_params(run.id, {"a": "1"})
    client.runs.log_params(run.id, {"a": "1"})
    with pytest.raises(ParamConflict, match="write-once"):
        client.runs.log_params(run.id, {"a": "2"})
    client.runs.set_tags(run.id, {"t": "1"})
    client.runs.set_tags(run.id, {"t": "2"})
    assert client.runs.get(run.id).tags == {"t": "2"}


@pytest.mark.operations("search_runs")
def test_search_filters_orders_and_pages_the_same_everywhere(client: loopml.Client) -> None:
    for i in range(25):
        run = client.runs.create("search", f"r{i:02d}", params={"depth": str(i % 3)})
        client.runs.log_metric(run.id, "rmse", float(i))
        client.runs.end(run.id)
    page = client.runs.search(
        "search", filter="metrics.rmse < 20 and params.depth = '1'", order_by=["metrics.rmse DESC"]
    )
    assert [r.name for r in page.items] == ["r19", "r16", "r13", "r10", "r07", "r04", "r01"]
    names, token = [], None
    while True:
        page = client.runs.search("search", order_by=["metrics.rmse"], max_results=10, page_token=token)
        names += [r.name for r in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert names == [f"r{i:02d}" for i in range(25)]
    with pytest.raises(InvalidFilter, match="position"):
        client.runs.search("search", filter="metrics.rmse <")
    with pytest.raises(ExperimentNotFound):
        client.runs.search("missing")


@pytest.mark.operations("log_dataset", "run_datasets")
def test_the_same_dataset_logged_twice_is_one_version(client: loopml.Client) -> None:
    frame = pd.DataFrame({"temp": np.linspace(0, 1, 100), "cnt": np.arange(100)})
    a = client.runs.create("data")
    b = client.runs.create("data")
    first = client.runs.log_dataset(a.id, frame, name="hour", role="training")
    second = client.runs.log_dataset(b.id, frame.copy(), name="hour", role="validation")
    changed = client.runs.log_dataset(b.id, frame.assign(cnt=frame["cnt"] + 1), name="hour", role="training")
    assert first.digest == second.digest != changed.digest
    assert first.rows == 100 and first.schema == (("temp", "float64"), ("cnt", "int64"))
    assert {(d.digest, d.role) for d in client.runs.datasets(b.id)} == {
        (first.digest, "validation"),
        (changed.digest, "training"),
    }


@pytest.mark.operations("log_artifact", "list_artifacts", "download_artifact")
def test_artifacts_round_trip_verified(client: loopml.Client, tmp_path: Path) -> None:
    run = client.runs.create("art")
    source = tmp_path / "report.txt"
    source.write_bytes(b"feature importance\n" * 1000)
    record = client.runs.log_artifact(run.id, source, "reports/report.txt")
    assert record.size == source.stat().st_size
    assert [a.path for a in client.runs.artifacts(run.id)] == ["reports/report.txt"]
    out = client.runs.download_artifact(run.id, "reports/report.txt", tmp_path / "out")
    assert out.read_bytes() == source.read_bytes()
    with pytest.raises(InvalidPath):
        client.runs.log_artifact(run.id, source, "../escape.txt")
    with pytest.raises(ArtifactNotFound):
        client.runs.download_artifact(run.id, "reports/none.txt", tmp_path / "out")


def test_bad_input_is_refused_where_it_is_written(client: loopml.Client) -> None:
    run = client.runs.create("bad")
    with pytest.raises(InvalidName):
        client.runs.log_metric(run.id, "../loss", 1.0)
    with pytest.raises(ValueError, match="number"):
        client.runs.log_metric(run.id, "loss", "high")  # type: ignore[arg-type]
    with pytest.raises(RunNotFound):
        client.runs.get("0" * 32)
    with pytest.raises(InvalidInput, match="250"):  # InvalidName in-process, request validation over HTTP
        client.runs.create("bad", "x" * 300)


def test_undeliverable_points_are_reported_not_dropped(client: loopml.Client) -> None:
    client.runs.log_metric("f" * 32, "loss", 1.0)
    with pytest.raises(DeliveryFailed, match=r"1 points of run f{32}"):
        client.runs.flush()
    client.runs.flush()  # reported once; nothing else pending


@pytest.mark.operations("create_token", "list_tokens", "revoke_token", "audit_events", "verify_audit")
def test_tokens_and_audit(client: loopml.Client) -> None:
    token, secret = client.tokens.create("ci", "editor", "bike")
    assert secret.startswith("lml_") and token.role.value == "editor"
    assert "ci" in [t.name for t in client.tokens.list()]
    assert client.tokens.revoke(token.id).revoked_at is not None
    client.runs.create("audited")
    assert client.audit.verify() == []
    actions = [e.action for e in client.audit.events()]
    assert "token.revoke" in actions and "run.create" in actions


def test_fluent_runs_nest_and_record_their_outcome(client: loopml.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fluent, "_default", client)
    with loopml.start_run(experiment="fluent", params={"max_depth": 6}) as parent:
        parent.log_metric("rmse", 41.2, step=3)
        parent.log_metrics({"mae": 28.0, "r2": 0.81})
        with loopml.start_run(name="child") as child:
            loopml.log_metric("fold_rmse", 40.0)
    with pytest.raises(RuntimeError), loopml.start_run(experiment="fluent", name="broken") as broken:
        raise RuntimeError("training diverged")
    assert loopml.active_run() is None
    child_run = client.runs.get(child.id)
    assert child_run.parent_run_id == parent.id and child_run.metrics == {"fold_rmse": 40.0}
    assert client.runs.get(broken.id).status is RunStatus.FAILED
    found = loopml.search_runs(
        "fluent", filter="metrics.rmse < 45 and params.max_depth = '6'", order_by=["metrics.rmse"]
    )
    assert [r.id for r in found] == [parent.id]
    assert found[0].metrics == {"rmse": 41.2, "mae": 28.0, "r2": 0.81}
    assert "loopml.env.python" in found[0].tags and "loopml.source.entry_point" in found[0].tags


# -- model registry ---------------------------------------------------------------------------------


def _logged_model(
    client: loopml.Client, tmp_path: Path, experiment: str = "registry", rmse: float = 41.0
) -> tuple[Run, str]:
    """A finished run that logged a model manifest under `model/`: (run, manifest digest)."""
    manifest = tmp_path / f"manifest-{rmse}.json"
    manifest.write_text(f'{{"flavor": "sklearn", "rmse": {rmse}}}')
    run = client.runs.create(experiment)
    client.runs.log_metric(run.id, "rmse", rmse)
    client.runs.log_dataset(run.id, pd.DataFrame({"hour": [1, 2]}), "bike-hourly")
    record = client.runs.log_artifact(run.id, manifest, "model/loopml-model.json")
    client.runs.end(run.id)
    return run, record.digest


@pytest.mark.operations("create_model", "get_model", "search_models", "update_model")
def test_registered_models_are_created_found_updated_and_searched(client: loopml.Client) -> None:
    created = client.models.create("bike", description="hourly demand", tags={"team": "demand"})
    assert (created.name, created.project, created.latest_version, created.aliases) == ("bike", "default", None, {})
    assert client.models.get("bike") == created
    with pytest.raises(AlreadyExists):
        client.models.create("bike")
    assert client.models.create("bike", exist_ok=True) == created
    client.models.create("churn", "marketing", tags={"team": "growth"})
    updated = client.models.update("bike", tags={"tier": "1"})
    assert updated.tags == {"team": "demand", "tier": "1"} and updated.description == "hourly demand"
    assert [m.name for m in client.models.list()] == ["bike", "churn"]
    assert [m.name for m in client.models.search("tags.team = 'growth'").items] == ["churn"]
    page = client.models.search(order_by=["attributes.name DESC"], max_results=1)
    assert [m.name for m in page.items] == ["churn"]
    rest = client.models.search(order_by=["attributes.name DESC"], max_results=1, page_token=page.next_page_token)
    assert [m.name for m in rest.items] == ["bike"] and rest.next_page_token is None
    with pytest.raises(ModelNotFound):
        client.models.get("nope")
    with pytest.raises(InvalidName):
        client.models.create("bad/name")
    with pytest.raises(InvalidFilter):
        client.models.search("metrics.rmse < 1")


@pytest.mark.operations("create_model_version", "get_model_version", "update_model_version")
def test_versions_come_from_logged_models_and_snapshot_the_run(client: loopml.Client, tmp_path: Path) -> None:
    client.models.create("bike")
    run, digest = _logged_model(client, tmp_path)
    version = client.models.create_version(
        "bike", run.id, "model", digest, "sklearn", signature={"inputs": [{"name": "hour"}]}, tags={"seed": 1}
    )
    assert (version.name, version.version, version.run_id, version.artifact_path) == ("bike", 1, run.id, "model")
    assert version.metrics == {"rmse": 41.0} and version.tags == {"seed": "1"}
    assert [role for _, role in version.datasets] == ["training"]
    assert version.signature == {"inputs": [{"name": "hour"}]} and version.status is ModelVersionStatus.READY
    assert version.uri == "models:/bike/1"
    client.runs.log_metric(run.id, "rmse", 99.0, step=9)
    client.runs.flush()
    assert client.models.get_version("bike", 1) == version  # the snapshot does not follow the run
    with pytest.raises(InvalidInput, match="no logged model"):
        client.models.create_version("bike", run.id, "elsewhere", digest, "sklearn")
    with pytest.raises(InvalidInput, match="sha256"):
        client.models.create_version("bike", run.id, "model", "0" * 64, "sklearn")
    with pytest.raises(InvalidPath):
        client.models.create_version("bike", run.id, "/srv/models/bike", digest, "sklearn")
    with pytest.raises(ModelVersionNotFound):
        client.models.get_version("bike", 5)
    archived = client.models.update_version("bike", 1, status="ARCHIVED", description="superseded")
    assert archived.status is ModelVersionStatus.ARCHIVED and archived.description == "superseded"


@pytest.mark.operations("set_model_alias", "get_model_alias", "delete_model_alias", "resolve_model_version")
def test_aliases_move_resolve_and_are_audited(client: loopml.Client, tmp_path: Path) -> None:
    client.models.create("bike")
    for rmse in (50.0, 41.0, 45.0):
        run, digest = _logged_model(client, tmp_path, rmse=rmse)
        client.models.create_version("bike", run.id, "model", digest, "sklearn")
    assert client.models.set_alias("bike", "champion", 2, reason="lowest rmse").aliases == ("champion",)
    client.models.set_alias("bike", "challenger", 3)
    assert client.models.resolve("models:/bike@champion").version == 2
    assert client.models.resolve("bike", "challenger").version == 3
    assert client.models.resolve("models:/bike/1").version == 1
    assert client.models.resolve("models:/bike@latest").version == 3
    assert client.models.get("bike").aliases == {"challenger": 3, "champion": 2}
    assert client.models.get_alias("bike", "champion").version == 2
    with pytest.raises(AliasNotFound):
        client.models.get_alias("bike", "nope")
    client.models.set_alias("bike", "champion", 3, reason="promoted challenger")
    assert client.models.delete_alias("bike", "challenger", reason="promoted") == 3
    with pytest.raises(AliasNotFound):
        client.models.resolve("models:/bike@challenger")
    with pytest.raises(InvalidInput, match="names no version"):
        client.models.resolve("models:/bike")
    moves = [(e.action, e.after) for e in client.audit.events() if "alias" in e.action]
    assert moves == [
        ("model.set_alias", {"alias": "champion", "version": 2, "reason": "lowest rmse"}),
        ("model.set_alias", {"alias": "challenger", "version": 3, "reason": None}),
        ("model.set_alias", {"alias": "champion", "version": 3, "reason": "promoted challenger"}),
        ("model.delete_alias", {"alias": "challenger", "version": None, "reason": "promoted"}),
    ]
    assert client.audit.verify() == []


@pytest.mark.operations("list_model_versions", "search_model_versions")
def test_versions_are_searched_with_the_run_filter_language(client: loopml.Client, tmp_path: Path) -> None:
    client.models.create("bike")
    client.models.create("churn")
    for name, rmse in (("bike", 50.0), ("bike", 41.0), ("churn", 30.0)):
        run, digest = _logged_model(client, tmp_path, rmse=rmse)
        client.models.create_version(name, run.id, "model", digest, "sklearn", tags={"rmse_band": str(rmse > 45)})
    assert [v.version for v in client.models.versions("bike")] == [2, 1]
    assert [v.version for v in client.models.versions("bike", "metrics.rmse < 45")] == [2]
    found = client.models.search_versions("metrics.rmse < 45", order_by=["metrics.rmse"])
    assert [(v.name, v.version) for v in found.items] == [("churn", 1), ("bike", 2)]
    tagged = client.models.search_versions("tags.rmse_band = 'True' and attributes.name = 'bike'")
    assert [(v.name, v.version) for v in tagged.items] == [("bike", 1)]
    with pytest.raises(InvalidFilter, match="unknown attribute"):
        client.models.search_versions("attributes.stage = 'Production'")
    with pytest.raises(ModelNotFound):
        client.models.versions("nope")
