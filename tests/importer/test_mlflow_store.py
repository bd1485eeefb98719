"""`MlflowStoreImport`: a store written by the real MLflow 3.17 (server + client, see
tests/data/mlflow_store/make_store.py) copied into loopml, on SQLite and PostgreSQL.

CI has no mlflow: the store is committed (mlflow.db and mlartifacts/); expected.json holds the ids it was
made with and each registered model's predictions on 20 fixed rows.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.domain import ModelVersionStatus, Principal, Role, RunStatus
from loopml.errors import InvalidInput, PermissionDenied
from loopml.importer import MlflowSource, MlflowStoreImport, Progress, mlflow_store
from loopml.registry import load_model
from loopml.store import MetadataStore, read_events, verify_chain

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "mlflow_store"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
ADMIN = Principal(actor="import-test", role=Role.ADMIN, project=None)
MODEL_PREFIXES = ("models/", "mlflow-models/")  # where registered versions' packages and MLflow files go
CHILD_2, CHILD_4 = sorted(EXPECTED["children"], key=lambda r: EXPECTED["children"][r]["depth"])


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A private copy of the MLflow store (some tests edit it)."""
    target = tmp_path / "mlflow"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def stores(db_url: str, tmp_path: Path) -> Iterator[tuple[MetadataStore, ArtifactStore]]:
    store = MetadataStore.open(db_url)
    try:
        yield store, open_artifact_store(str(tmp_path / "blobs"))
    finally:
        store.close()


def _import(
    stores: tuple[MetadataStore, ArtifactStore],
    directory: Path,
    progress: Progress | None = None,
    principal: Principal = ADMIN,
) -> mlflow_store.ImportReport:
    store, blobs = stores
    with MlflowSource(f"sqlite:///{directory / 'mlflow.db'}", directory / "mlartifacts") as source:
        return MlflowStoreImport(store, blobs, "legacy").run(principal, source, progress)


def _chain_problems(store: MetadataStore) -> list[str]:
    with store.read() as unit:
        return verify_chain(unit.connection)


def _event_count(store: MetadataStore) -> int:
    with store.read() as unit:
        return len(list(read_events(unit.connection)))


def _history(store: MetadataStore, run_id: str, key: str) -> list[tuple[int, float]]:
    with store.read() as unit:
        return [(m.step, m.value) for m in unit.metrics.history(run_id, key)]


def test_a_real_mlflow_store_lands_whole(stores: tuple[MetadataStore, ArtifactStore], source_copy: Path) -> None:
    store, blobs = stores
    report = _import(stores, source_copy)

    assert (report.runs, report.models, report.versions, report.aliases) == (4, 1, 2, 1)
    assert report.metric_points == 15  # 5 rmse + 2 odd per child, 1 loss in the failed run
    assert any("1 deleted run" in s for s in report.skipped)
    with store.read() as unit:
        names = {e.name for e in unit.experiments.list("legacy")}
        assert {"bikes", "scratch"} <= names
        parent = unit.runs.get(EXPECTED["parent_run_id"])
        child = unit.runs.get(CHILD_4)
        failed = unit.runs.get(EXPECTED["failed_run_id"])
        assert not unit.runs.existing([EXPECTED["deleted_run_id"]])
        artifacts = {a.path: a for a in unit.artifacts.list(CHILD_4)}
    assert parent.params == {"dataset": "bike_sharing"} and parent.tags["stage"] == "search"
    assert child.parent_run_id == parent.id and child.name == "depth-4"
    assert child.params == {"max_depth": "4", "criterion": "squared_error"}
    assert child.status is RunStatus.FINISHED and child.end_time is not None and child.end_time > child.start_time
    assert failed.status is RunStatus.FAILED
    assert child.metrics["rmse"] == pytest.approx(100.0 / 8)
    assert _history(store, CHILD_4, "rmse") == [(s, pytest.approx(100.0 / (s + 4))) for s in range(5)]
    odd = _history(store, CHILD_4, "odd")
    assert math.isnan(odd[0][1]) and odd[1][1] == 1.7976931348623157e308  # MLflow stores inf as the max float
    assert b"".join(blobs.iter_chunks(artifacts["notes/readme.txt"].digest)) == b"depth 4\n"
    assert json.loads(b"".join(blobs.iter_chunks(artifacts["config.json"].digest))) == {"depth": 4}
    assert _chain_problems(store) == []


def test_registered_versions_keep_numbers_aliases_and_predictions(
    stores: tuple[MetadataStore, ArtifactStore], source_copy: Path, tmp_path: Path
) -> None:
    store, blobs = stores
    _import(stores, source_copy)
    with store.read() as unit:
        model = unit.models.get("bikes-tree")
        row = unit.models.find("bikes-tree")
        assert row is not None
        first, second = unit.model_versions.get(row, 1), unit.model_versions.get(row, 2)
        champion = unit.model_versions.alias(row, "champion")
        files = {a.path: a.digest for a in unit.artifacts.list(CHILD_4)}
        logged = unit.logged_models.get(second.artifact_path.removeprefix("models/"))
    assert model.description == "hourly rentals" and model.tags == {"owner": "ann"}
    assert (first.run_id, second.run_id) == (CHILD_2, CHILD_4)
    assert first.status is ModelVersionStatus.ARCHIVED and first.tags == {"mlflow.stage": "Archived"}
    assert second.description == "deeper tree" and second.tags == {"validated": "yes"}
    assert champion == 2 and second.flavor == "sklearn"
    assert second.signature is not None and [c["name"] for c in second.signature["inputs"]] == [
        "temp",
        "atemp",
        "hum",
        "windspeed",
        "hr",
    ]
    assert files[f"{second.artifact_path}/loopml-model.json"] == second.manifest_digest
    assert any(p.startswith("mlflow-models/") and p.endswith("/MLmodel") for p in files)  # the original files
    # recorded as MLflow 3's logged model, so MLflow clients of `loopml server` load it from those files
    assert (logged.run_id, logged.manifest_digest, logged.flavor) == (CHILD_4, second.manifest_digest, "sklearn")

    package = tmp_path / "downloaded"
    package.mkdir()
    for path, digest in files.items():
        if path.startswith(second.artifact_path + "/"):
            target = package / path.removeprefix(second.artifact_path + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(blobs.iter_chunks(digest)))
    predicted = load_model(package).predict(pd.DataFrame(EXPECTED["rows"]))
    np.testing.assert_allclose(predicted, EXPECTED["children"][CHILD_4]["predictions"], rtol=1e-12)


def test_a_second_import_changes_nothing(stores: tuple[MetadataStore, ArtifactStore], source_copy: Path) -> None:
    store, _ = stores
    _import(stores, source_copy)
    events = _event_count(store)
    again = _import(stores, source_copy)
    assert (again.runs, again.runs_already_there, again.versions, again.versions_already_there) == (0, 4, 0, 2)
    assert (again.metric_points, again.aliases, again.models, again.experiments) == (0, 0, 0, 0)
    assert _event_count(store) == events
    assert len(_history(store, CHILD_4, "rmse")) == 5


class _Interrupt(Progress):
    """Stops the import after `after` committed batches, as a Ctrl-C or a crash would."""

    def __init__(self, after: int) -> None:
        self.after = after

    def advance(self, runs: int, points: int) -> None:  # noqa: ARG002 (counts batches)
        self.after -= 1
        if self.after == 0:
            raise KeyboardInterrupt


def test_an_interrupted_import_resumes_where_it_stopped(
    stores: tuple[MetadataStore, ArtifactStore], source_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = stores
    monkeypatch.setattr(mlflow_store, "RUNS_PER_TRANSACTION", 1)
    with pytest.raises(KeyboardInterrupt):
        _import(stores, source_copy, _Interrupt(after=2))
    with store.read() as unit:
        assert len(unit.runs.existing([EXPECTED["parent_run_id"], CHILD_2, CHILD_4, EXPECTED["failed_run_id"]])) == 2
        assert unit.models.find("bikes-tree") is None

    resumed = _import(stores, source_copy)
    assert (resumed.runs, resumed.runs_already_there, resumed.versions) == (2, 2, 2)
    assert _history(store, CHILD_4, "rmse")[-1] == (4, pytest.approx(12.5))
    assert _chain_problems(store) == []


def test_artifact_uris_cannot_lead_outside_the_artifacts_directory(
    stores: tuple[MetadataStore, ArtifactStore], source_copy: Path, tmp_path: Path
) -> None:
    store, _ = stores
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("do not copy")
    run_dir = source_copy / "mlartifacts" / "1" / CHILD_2 / "artifacts"
    (run_dir / "link.txt").symlink_to(secret / "key.txt")
    (run_dir / "linked-dir").symlink_to(secret)
    with sqlite3.connect(source_copy / "mlflow.db") as db:
        db.execute(
            "UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
            (f"mlflow-artifacts:/1/{CHILD_4}/artifacts/../../../../secret", CHILD_4),
        )
        db.execute(
            "UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
            (f"file://{secret}", EXPECTED["parent_run_id"]),
        )
    _import(stores, source_copy)
    with store.read() as unit:
        run_files = {a.path for a in unit.artifacts.list(CHILD_2) if not a.path.startswith(MODEL_PREFIXES)}
        assert run_files == {"config.json", "notes/readme.txt"}  # the symlinks were not followed
        assert not [a for a in unit.artifacts.list(CHILD_4) if not a.path.startswith(MODEL_PREFIXES)]
        assert unit.artifacts.list(EXPECTED["parent_run_id"]) == []


def test_a_project_scoped_token_imports_into_its_project_only(
    stores: tuple[MetadataStore, ArtifactStore], source_copy: Path
) -> None:
    with pytest.raises(PermissionDenied):
        _import(stores, source_copy, principal=Principal(actor="eve", role=Role.EDITOR, project="other"))
    with pytest.raises(PermissionDenied):
        _import(stores, source_copy, principal=Principal(actor="vic", role=Role.VIEWER, project=None))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://mlflow@db/mlflow", "SQLite"),
        ("sqlite:///no/such/mlflow.db", "no such file"),
        ("sqlite://otherhost/mlflow.db", "local file"),
    ],
)
def test_sources_loopml_cannot_read_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        MlflowSource(url, None)


def test_a_file_that_is_not_an_mlflow_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InvalidInput, match="not a SQLite database"):
        MlflowSource(f"sqlite:///{junk}", None)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE runs (id TEXT)")
    with pytest.raises(InvalidInput, match="not an MLflow tracking store"):
        MlflowSource(f"sqlite:///{other}", None)
    with pytest.raises(InvalidInput, match="no such directory"):
        MlflowSource(f"sqlite:///{FIXTURE / 'mlflow.db'}", tmp_path / "missing")


def test_the_source_database_is_never_written(stores: tuple[MetadataStore, ArtifactStore], source_copy: Path) -> None:
    before = (source_copy / "mlflow.db").read_bytes()
    _import(stores, source_copy)
    assert (source_copy / "mlflow.db").read_bytes() == before
