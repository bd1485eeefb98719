"""The registry's repositories (registered models, versions, aliases), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loopml.domain import DatasetInput, Metric, MetricColumns, ModelVersionStatus
from loopml.domain.search import MODEL_FIELDS, MODEL_VERSION_FIELDS, parse_filter, parse_order_by
from loopml.errors import AliasNotFound, AlreadyExists, ModelNotFound, ModelVersionNotFound
from loopml.store import MetadataStore, read_events
from loopml.store.schema import metadata

RUN = "0" * 31 + "1"
DIGEST = "a" * 64


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    with store.write("ann") as unit:
        project = unit.projects.get_or_create("default")
        experiment = unit.experiments.get_or_create(project, "bike")
        unit.runs.create(RUN, experiment.id, "first", 1000, None)
        points = [Metric("rmse", 50.0, 0, 1), Metric("rmse", 41.5, 1, 2), Metric("odd", math.nan, 0, 1)]
        unit.metrics.log(RUN, MetricColumns.from_points(points))
        unit.datasets.link(RUN, DatasetInput("hourly", "d" * 64, (("hour", "int64"),), 10, "bike.csv", "training"))
        unit.models.create(project, "bike", "demand model", "ann", {"team": "demand"})
    return RUN


def _version(store: MetadataStore, run_id: str, name: str = "bike", **tags: str) -> int:
    with store.write("ann") as unit:
        model = unit.models.lock(name)
        return unit.model_versions.create(model, run_id, "model", DIGEST, "sklearn", {"inputs": []}, "", tags, "ann")


REGISTRY_TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "model_version_metrics",
    "model_version_datasets",
    "model_aliases",
}


def test_migration_0002_creates_the_registry_tables_the_code_uses(store: MetadataStore) -> None:
    # Scoped to the registry's tables: migration 0001 adds SQLite-only covering indexes on purpose.
    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in REGISTRY_TABLES

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include})
        differences = compare_metadata(context, metadata)
    assert differences == []
    assert set(metadata.tables) >= REGISTRY_TABLES


def test_model_names_are_unique_and_created_once(store: MetadataStore, run_id: str) -> None:
    with store.write("bob") as unit, pytest.raises(AlreadyExists, match="already exists"):
        unit.models.create(unit.projects.get_or_create("other"), "bike", "", "bob", {})
    with store.read() as unit:
        model = unit.models.get("bike")
        assert unit.models.project_of("bike") == "default"
        with pytest.raises(ModelNotFound):
            unit.models.get("nope")
    assert (model.project, model.description, model.owner) == ("default", "demand model", "ann")
    assert model.tags == {"team": "demand"}
    assert model.latest_version is None and model.aliases == {}


def test_versions_are_numbered_per_model_and_snapshot_metrics_and_datasets(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        unit.models.create(unit.projects.get("default"), "other", "", "ann", {})
    assert [_version(store, run_id) for _ in range(3)] == [1, 2, 3]
    assert _version(store, run_id, "other") == 1
    with store.write("ann") as unit:
        unit.metrics.log(
            run_id, MetricColumns.from_points([Metric("rmse", 1.0, 5, 3)])
        )  # after registration: not in the snapshot
    with store.read() as unit:
        version = unit.model_versions.get(unit.models.lock("bike"), 2)
        assert unit.models.get("bike").latest_version == 3
        with pytest.raises(ModelVersionNotFound):
            unit.model_versions.get(unit.models.lock("bike"), 4)
    assert version.metrics["rmse"] == 41.5 and math.isnan(version.metrics["odd"])
    assert version.datasets == (("d" * 64, "training"),)
    assert version.signature == {"inputs": []}
    assert (version.status, version.flavor, version.created_by) == (ModelVersionStatus.READY, "sklearn", "ann")


def test_concurrent_registrations_get_distinct_consecutive_numbers(store: MetadataStore, run_id: str) -> None:
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            for _ in range(4):
                numbers.append(_version(store, run_id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 25))


def test_tags_merge_and_updates_are_audited(store: MetadataStore, run_id: str) -> None:
    version = _version(store, run_id, stage="candidate")
    with store.write("bob") as unit:
        model = unit.models.update("bike", "new text", {"team": "demand", "owner": "ds"})
        row = unit.models.lock("bike")
        updated = unit.model_versions.update(row, version, ModelVersionStatus.ARCHIVED, None, {"stage": "final"})
    assert model.description == "new text" and model.tags == {"team": "demand", "owner": "ds"}
    assert updated.status is ModelVersionStatus.ARCHIVED and updated.tags == {"stage": "final"}
    with store.read() as unit:
        events = [e for e in read_events(unit.connection) if e.actor == "bob"]
    assert [(e.action, e.entity_id) for e in events] == [("model.update", "bike"), ("model_version.update", "bike/1")]
    assert events[0].before == {"description": "demand model", "tags": {}}
    assert events[0].after == {"description": "new text", "tags": {"owner": "ds"}}
    assert events[1].before == {"status": "READY", "tags": {"stage": "candidate"}}


def test_aliases_move_and_every_move_is_audited(store: MetadataStore, run_id: str) -> None:
    for _ in range(3):
        _version(store, run_id)
    with store.write("ann") as unit:
        row = unit.models.lock("bike")
        assert unit.model_versions.set_alias(row, "champion", 1, "first") is None
        assert unit.model_versions.set_alias(row, "champion", 3, "better rmse") == 1
        unit.model_versions.set_alias(row, "challenger", 2, None)
        assert unit.model_versions.delete_alias(row, "challenger", "retired") == 2
        with pytest.raises(AliasNotFound):
            unit.model_versions.delete_alias(row, "challenger", None)
    with store.read() as unit:
        row = unit.models.lock("bike")
        assert unit.model_versions.alias(row, "champion") == 3
        assert unit.models.get("bike").aliases == {"champion": 3}
        assert unit.model_versions.get(row, 3).aliases == ("champion",)
        assert unit.model_versions.get(row, 1).aliases == ()
        events = [e for e in read_events(unit.connection) if e.action.startswith("model.") and "alias" in e.action]
    assert [(e.action, e.before, e.after) for e in events] == [
        ("model.set_alias", None, {"alias": "champion", "version": 1, "reason": "first"}),
        (
            "model.set_alias",
            {"alias": "champion", "version": 1},
            {"alias": "champion", "version": 3, "reason": "better rmse"},
        ),
        ("model.set_alias", None, {"alias": "challenger", "version": 2, "reason": None}),
        (
            "model.delete_alias",
            {"alias": "challenger", "version": 2},
            {"alias": "challenger", "version": None, "reason": "retired"},
        ),
    ]


def test_latest_ready_skips_archived_versions(store: MetadataStore, run_id: str) -> None:
    for _ in range(3):
        _version(store, run_id)
    with store.write("ann") as unit:
        row = unit.models.lock("bike")
        unit.model_versions.update(row, 3, ModelVersionStatus.ARCHIVED, None, None)
        assert unit.model_versions.latest_ready(row) == 2
        unit.model_versions.update(row, 2, ModelVersionStatus.ARCHIVED, None, None)
        unit.model_versions.update(row, 1, ModelVersionStatus.ARCHIVED, None, None)
        with pytest.raises(ModelVersionNotFound, match="no READY version"):
            unit.model_versions.latest_ready(row)


def test_search_filters_and_orders_models_and_versions(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        project = unit.projects.get_or_create("other")
        unit.models.create(project, "alpha", "", "ann", {"team": "ads"})
        unit.models.create(project, "Zeta", "", "ann", {"team": "demand"})
    _version(store, run_id, stage="a")
    _version(store, run_id, stage="b")
    with store.read() as unit:

        def models(text: str | None, order: list[str] | None = None, project: str | None = None) -> list[str]:
            ids = unit.models.search_ids(
                project, parse_filter(text, MODEL_FIELDS), parse_order_by(order, MODEL_FIELDS), 100, 0
            )
            return [m.name for m in unit.models.get_many(ids)]

        def versions(text: str | None, order: list[str] | None = None) -> list[tuple[str, int]]:
            keys = unit.model_versions.search_keys(
                None,
                None,
                parse_filter(text, MODEL_VERSION_FIELDS),
                parse_order_by(order, MODEL_VERSION_FIELDS),
                100,
                0,
            )
            return [(v.name, v.version) for v in unit.model_versions.get_many(keys)]

        assert models(None) == ["Zeta", "alpha", "bike"]  # code-point order on both backends
        assert models("tags.team = 'demand'") == ["Zeta", "bike"]
        assert models("attributes.name ILIKE 'b%'") == ["bike"]
        assert models(None, project="other") == ["Zeta", "alpha"]
        assert models(None, ["tags.team DESC"]) == ["bike", "Zeta", "alpha"]  # ties: by creation
        assert versions(None) == [("bike", 2), ("bike", 1)]
        assert versions("metrics.rmse < 42 and tags.stage = 'a'") == [("bike", 1)]
        assert versions("metrics.odd < 1") == []  # a NaN never matches
        assert versions("attributes.version IN (2) and attributes.status = 'READY'") == [("bike", 2)]
        assert versions(None, ["tags.stage DESC"]) == [("bike", 2), ("bike", 1)]
        assert versions("attributes.flavor = 'onnx'") == []
