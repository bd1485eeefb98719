"""The registry service: authorisation, registering only from a run's logged model, URIs, search."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.artifacts import open_artifact_store
from loopml.domain import (
    Metric,
    MetricColumns,
    ModelReference,
    ModelVersionStatus,
    Principal,
    Role,
    parse_model_uri,
)
from loopml.errors import (
    AliasNotFound,
    AlreadyExists,
    InvalidFilter,
    InvalidInput,
    InvalidName,
    InvalidPath,
    InvalidStatus,
    ModelNotFound,
    ModelVersionNotFound,
    PermissionDenied,
    RunNotFound,
)
from loopml.registry import RegistryService
from loopml.store import MetadataStore, read_events
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
EDITOR = Principal("ed", Role.EDITOR, None)
VIEWER = Principal("vi", Role.VIEWER, None)
OTHER_EDITOR = Principal("mallory", Role.EDITOR, "other")
MANIFEST = b'{"flavor": "sklearn", "files": {}}'
DIGEST = hashlib.sha256(MANIFEST).hexdigest()


class World:
    def __init__(self, store: MetadataStore, tmp_path: Path) -> None:
        self.tracking = TrackingService(store, open_artifact_store((tmp_path / "blobs").as_uri()))
        self.registry = RegistryService(store)

    def run(self, project: str = "default", manifest: bytes = MANIFEST, path: str = "model") -> str:
        experiment = self.tracking.get_or_create_experiment(ADMIN, "e", project)
        run = self.tracking.create_run(ADMIN, experiment.id)
        self.tracking.log_artifact(ADMIN, run.id, f"{path}/loopml-model.json", [manifest])
        return run.id

    def version(self, name: str = "bike", run_id: str | None = None) -> int:
        run_id = run_id or self.run()
        return self.registry.create_version(EDITOR, name, run_id, "model", DIGEST, "sklearn").version


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    made = World(store, tmp_path)
    made.registry.create_model(EDITOR, "bike", description="demand", tags={"team": "ds"})
    yield made
    store.close()


def test_viewers_read_and_only_editors_write(world: World) -> None:
    world.version()
    assert world.registry.get_model(VIEWER, "bike").latest_version == 1
    assert world.registry.get_version(VIEWER, "bike", 1).version == 1
    assert [m.name for m in world.registry.search_models(VIEWER).items] == ["bike"]
    run_id = world.run()
    for attempt in (
        lambda: world.registry.create_model(VIEWER, "x"),
        lambda: world.registry.update_model(VIEWER, "bike", description="no"),
        lambda: world.registry.create_version(VIEWER, "bike", run_id, "model", DIGEST, "sklearn"),
        lambda: world.registry.update_version(VIEWER, "bike", 1, status="ARCHIVED"),
        lambda: world.registry.set_alias(VIEWER, "bike", "champion", 1),
        lambda: world.registry.delete_alias(VIEWER, "bike", "champion"),
    ):
        with pytest.raises(PermissionDenied, match="needs the editor role"):
            attempt()


def test_a_token_scoped_to_another_project_sees_no_model(world: World) -> None:
    world.version()
    world.registry.set_alias(EDITOR, "bike", "champion", 1)
    for attempt in (
        lambda: world.registry.get_model(OTHER_EDITOR, "bike"),
        lambda: world.registry.get_version(OTHER_EDITOR, "bike", 1),
        lambda: world.registry.resolve(OTHER_EDITOR, "models:/bike@champion"),
        lambda: world.registry.set_alias(OTHER_EDITOR, "bike", "champion", 1),
        lambda: world.registry.update_model(OTHER_EDITOR, "bike", description="x"),
        lambda: world.registry.search_versions(OTHER_EDITOR, name="bike"),
    ):
        with pytest.raises(ModelNotFound):
            attempt()
    assert world.registry.search_models(OTHER_EDITOR).items == []
    assert world.registry.search_versions(OTHER_EDITOR).items == []
    with pytest.raises(PermissionDenied):
        world.registry.create_model(OTHER_EDITOR, "sneaky", project="default")
    mine = world.registry.create_model(OTHER_EDITOR, "theirs")
    assert mine.project == "other" and mine.owner == "mallory"


def test_model_names_are_global_and_checked(world: World) -> None:
    with pytest.raises(AlreadyExists):
        world.registry.create_model(EDITOR, "bike", project="marketing")
    assert world.registry.get_or_create_model(EDITOR, "bike").description == "demand"
    with pytest.raises(AlreadyExists, match="another project"):
        world.registry.get_or_create_model(EDITOR, "bike", project="marketing")
    assert world.registry.get_or_create_model(EDITOR, "new", project="marketing").project == "marketing"
    for bad in ("a@b", "a/b", "..", "", " padded", "x\n"):
        with pytest.raises(InvalidName):
            world.registry.create_model(EDITOR, bad)


def test_a_version_is_made_only_from_a_logged_model_of_the_same_project(world: World) -> None:
    run_id = world.run()
    with pytest.raises(InvalidInput, match="the run has no logged model at 'elsewhere'"):
        world.registry.create_version(EDITOR, "bike", run_id, "elsewhere", DIGEST, "sklearn")
    with pytest.raises(InvalidInput, match="has sha256"):
        world.registry.create_version(EDITOR, "bike", run_id, "model", "b" * 64, "sklearn")
    with pytest.raises(InvalidInput, match="in project 'marketing'"):
        world.registry.create_version(EDITOR, "bike", world.run("marketing"), "model", DIGEST, "sklearn")
    for path in ("/etc/passwd", "../model", "file:///tmp/model", "s3://bucket/model", "C:\\model"):
        with pytest.raises(InvalidPath):
            world.registry.create_version(EDITOR, "bike", run_id, path, DIGEST, "sklearn")
    with pytest.raises(RunNotFound):
        world.registry.create_version(EDITOR, "bike", "f" * 32, "model", DIGEST, "sklearn")
    with pytest.raises(InvalidInput, match="manifest_digest"):
        world.registry.create_version(EDITOR, "bike", run_id, "model", "ABC", "sklearn")
    with pytest.raises(InvalidInput, match="flavor"):
        world.registry.create_version(EDITOR, "bike", run_id, "model", DIGEST, "no spaces")
    with pytest.raises(InvalidInput, match="signature"):
        world.registry.create_version(EDITOR, "bike", run_id, "model", DIGEST, "sklearn", signature={"x": {1, 2}})
    with pytest.raises(ModelNotFound):
        world.registry.create_version(EDITOR, "nope", run_id, "model", DIGEST, "sklearn")
    made = world.registry.create_version(EDITOR, "bike", run_id, "model", DIGEST, "sklearn", tags={"a": 1})
    assert (made.version, made.run_id, made.manifest_digest, made.tags) == (1, run_id, DIGEST, {"a": "1"})


def test_aliases_resolve_and_guard_archived_versions(world: World) -> None:
    for _ in range(3):
        world.version()
    moved = world.registry.set_alias(EDITOR, "bike", "champion", 2, reason="best rmse")
    assert moved.aliases == ("champion",)
    assert world.registry.resolve(VIEWER, "models:/bike@champion").version == 2
    assert world.registry.resolve(VIEWER, "bike", "champion").version == 2
    assert world.registry.get_alias(VIEWER, "bike", "champion").version == 2
    assert world.registry.resolve(VIEWER, "models:/bike@latest").version == 3
    assert world.registry.resolve(VIEWER, "bike/1").version == 1
    with pytest.raises(InvalidInput, match="aliased as champion"):
        world.registry.update_version(EDITOR, "bike", 2, status="ARCHIVED")
    world.registry.update_version(EDITOR, "bike", 3, status=ModelVersionStatus.ARCHIVED)
    assert world.registry.resolve(VIEWER, "models:/bike@latest").version == 2
    with pytest.raises(InvalidInput, match="READY"):
        world.registry.set_alias(EDITOR, "bike", "challenger", 3)
    with pytest.raises(InvalidStatus):
        world.registry.update_version(EDITOR, "bike", 1, status="Production")
    with pytest.raises(InvalidName, match="reserved"):
        world.registry.set_alias(EDITOR, "bike", "latest", 1)
    with pytest.raises(InvalidName):
        world.registry.set_alias(EDITOR, "bike", "Champion", 1)
    with pytest.raises(ModelVersionNotFound):
        world.registry.set_alias(EDITOR, "bike", "challenger", 9)
    with pytest.raises(AliasNotFound):
        world.registry.resolve(VIEWER, "models:/bike@challenger")
    assert world.registry.delete_alias(EDITOR, "bike", "champion", reason="rollback") == 2
    with pytest.raises(AliasNotFound):
        world.registry.delete_alias(EDITOR, "bike", "champion")
    with world.registry.store.read() as unit:
        moves = [e for e in read_events(unit.connection) if e.action in ("model.set_alias", "model.delete_alias")]
    assert [(e.actor, e.after) for e in moves] == [
        ("ed", {"alias": "champion", "version": 2, "reason": "best rmse"}),
        ("ed", {"alias": "champion", "version": None, "reason": "rollback"}),
    ]


@pytest.mark.parametrize(
    ("text", "second", "expected"),
    [
        ("models:/bike@champion", None, ModelReference("bike", alias="champion")),
        ("models:/bike/3", None, ModelReference("bike", version=3)),
        ("models:/bike@latest", None, ModelReference("bike", alias="latest")),
        ("bike@challenger", None, ModelReference("bike", alias="challenger")),
        ("bike/12", None, ModelReference("bike", version=12)),
        ("bike", 4, ModelReference("bike", version=4)),
        ("bike", "4", ModelReference("bike", version=4)),
        ("models:/bike", "champion", ModelReference("bike", alias="champion")),
        ("my model.v2@canary-1", None, ModelReference("my model.v2", alias="canary-1")),
    ],
)
def test_model_uris_parse(text: str, second: str | int | None, expected: ModelReference) -> None:
    assert parse_model_uri(text, second) == expected


@pytest.mark.parametrize(
    ("text", "second", "message"),
    [
        ("models:/bike", None, "names no version"),
        ("bike", None, "names no version"),
        ("models:/bike/abc", None, "is not a version number"),
        ("models:/bike/0", None, "is not a version number"),
        ("models:/bike/1/2", None, "too many '/'"),
        ("models:/@champion", None, "has no model name"),
        ("models:/bike@", None, "empty alias"),
        ("bike@champion", 3, "not both"),
        ("bike", 0, "start at 1"),
        ("", None, "non-empty"),
    ],
)
def test_bad_model_uris_say_what_to_write(text: str, second: str | int | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_model_uri(text, second)


def test_resolve_checks_what_the_uri_names(world: World) -> None:
    world.version()
    with pytest.raises(ModelNotFound):
        world.registry.resolve(VIEWER, "models:/nope@champion")
    with pytest.raises(InvalidName):
        world.registry.resolve(VIEWER, "models:/bike@3")
    with pytest.raises(ModelVersionNotFound):
        world.registry.resolve(VIEWER, "models:/bike/2")


def test_search_uses_the_run_filter_language(world: World) -> None:
    good, bad = world.run(), world.run()
    world.tracking.log_metrics(ADMIN, good, _points(rmse=41.0))
    world.tracking.log_metrics(ADMIN, bad, _points(rmse=63.0))
    world.version(run_id=good)
    world.version(run_id=bad)
    world.registry.create_model(EDITOR, "churn", tags={"team": "growth"})
    found = world.registry.search_versions(VIEWER, "metrics.rmse < 50")
    assert [(v.name, v.version) for v in found.items] == [("bike", 1)]
    ordered = world.registry.search_versions(VIEWER, None, ["metrics.rmse DESC"])
    assert [v.version for v in ordered.items] == [2, 1]
    assert [m.name for m in world.registry.search_models(VIEWER, "tags.team = 'growth'").items] == ["churn"]
    page = world.registry.search_models(VIEWER, max_results=1)
    assert [m.name for m in page.items] == ["bike"] and page.next_page_token is not None
    rest = world.registry.search_models(VIEWER, max_results=1, page_token=page.next_page_token)
    assert [m.name for m in rest.items] == ["churn"] and rest.next_page_token is None
    with pytest.raises(InvalidFilter, match="unknown prefix 'params'"):
        world.registry.search_versions(VIEWER, "params.x = '1'")
    with pytest.raises(InvalidFilter, match="unknown attribute 'start_time'"):
        world.registry.search_models(VIEWER, "attributes.start_time > 1")
    with pytest.raises(InvalidInput, match="page_token"):
        world.registry.search_models(VIEWER, page_token="garbage")


def _points(**values: float) -> MetricColumns:
    return MetricColumns.from_points([Metric(k, v, 0, 1) for k, v in values.items()])
