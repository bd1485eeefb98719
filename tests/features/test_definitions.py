"""Definitions from a file: plan shows the diff, apply stores versions by digest (audited), hostile files
are refused at plan with messages that say what to fix, and a view a deployment uses cannot be deleted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loopml.domain import DatasetInput, Deployment, DeploymentVersion, Principal, Role
from loopml.errors import InvalidInput, PermissionDenied
from loopml.features import FeatureStore
from loopml.store import read_events, verify_chain

ADMIN = Principal("ann", Role.ADMIN, None)

VIEW = """
station = Entity("station", join_keys=["station_id"])
weather = FeatureView("weather_hourly", entities=[station], ttl="2h",
                      source=FileSource("weather.parquet", timestamp="ts", created="created_at"),
                      schema=[Field("temp", "float"), Field("hum", "float")])
model = FeatureService("bike", features=["weather_hourly:temp"])
"""


@pytest.fixture(autouse=True)
def weather(tmp_path: Path) -> Path:
    ts = pd.to_datetime(["2012-01-01 00:00", "2012-01-01 01:00"], utc=True)
    path = tmp_path / "weather.parquet"
    pd.DataFrame(
        {"station_id": [1, 2], "ts": ts, "created_at": ts, "temp": [0.2, 0.3], "hum": [0.5, 0.6], "name": ["a", "b"]}
    ).to_parquet(path)
    return path


def test_plan_shows_creations_apply_stores_versions_and_reapplying_changes_nothing(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    path = write_definitions(VIEW)
    plan = features_store.plan(ADMIN, path)
    assert {(c.kind, c.name, c.action) for c in plan.changes} == {
        ("entity", "station", "create"),
        ("feature_view", "weather_hourly", "create"),
        ("feature_service", "bike", "create"),
    }
    assert features_store.list(ADMIN) == []  # plan stores nothing
    applied = features_store.apply(ADMIN, path)
    assert {c.version for c in applied.changes} == {1}
    assert not features_store.plan(ADMIN, path).has_changes
    again = features_store.apply(ADMIN, path)
    assert {c.action for c in again.changes} == {"unchanged"}
    assert features_store.get(ADMIN, "feature_view", "weather_hourly").version == 1


def test_a_changed_definition_is_a_new_version_and_the_old_one_stays_readable(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    features_store.apply(ADMIN, write_definitions(VIEW))
    changed = write_definitions(VIEW.replace('ttl="2h"', 'ttl="3h"'))
    plan = features_store.plan(ADMIN, changed)
    update = next(c for c in plan.changes if c.name == "weather_hourly")
    assert (update.action, update.version, update.details) == ("update", 1, ("ttl_seconds",))
    features_store.apply(ADMIN, changed)
    assert features_store.get(ADMIN, "feature_view", "weather_hourly").spec["ttl_seconds"] == 3 * 3600
    assert features_store.get(ADMIN, "feature_view", "weather_hourly", version=1).spec["ttl_seconds"] == 7200


def test_apply_is_audited(features_store: FeatureStore, write_definitions: Callable[[str], Path]) -> None:
    features_store.apply(ADMIN, write_definitions(VIEW))
    features_store.apply(ADMIN, write_definitions(VIEW.replace('"2h"', '"1h"')))
    with features_store.store.read() as unit:
        events = list(read_events(unit.connection))
        assert verify_chain(unit.connection) == []
    feature_events = [(e.action, e.entity_id) for e in events if e.action.startswith("feature.")]
    assert ("feature.create", "weather_hourly/1") in feature_events
    assert ("feature.update", "weather_hourly/2") in feature_events
    assert all(e.actor == "ann" for e in events if e.action.startswith("feature."))


def test_removing_a_definition_from_the_file_deletes_it(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    features_store.apply(ADMIN, write_definitions(VIEW))
    smaller = write_definitions(VIEW.replace('model = FeatureService("bike", features=["weather_hourly:temp"])', ""))
    plan = features_store.plan(ADMIN, smaller)
    assert [(c.name, c.action) for c in plan.changes if c.action != "unchanged"] == [("bike", "delete")]
    features_store.apply(ADMIN, smaller)
    assert {d.name for d in features_store.list(ADMIN)} == {"station", "weather_hourly"}


def test_a_viewer_may_plan_but_not_apply(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    viewer = Principal("vic", Role.VIEWER, None)
    path = write_definitions(VIEW)
    assert features_store.plan(viewer, path).has_changes
    with pytest.raises(PermissionDenied):
        features_store.apply(viewer, path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            VIEW + 'other = FeatureView("weather_hourly", entities=[station], source=weather.source, '
            'schema=[Field("hum", "float")])\n',
            "two different feature views are named 'weather_hourly'",
        ),
        (VIEW.replace('timestamp="ts"', 'timestamp="when"'), "the timestamp column 'when' is not in its source"),
        (VIEW.replace('created="created_at"', 'created="made"'), "the created column 'made' is not in its source"),
        (VIEW.replace('join_keys=["station_id"]', 'join_keys=["station"]'), "the join key 'station' is not in"),
        (
            VIEW.replace('Field("hum", "float")', 'Field("name", "float")'),
            "'name' is declared float but the source holds VARCHAR",
        ),
        (VIEW.replace('Field("hum", "float")', 'Field("wind", "float")'), "feature 'wind' is not a column of"),
        (VIEW.replace('ttl="2h"', "ttl=7200"), "ttl must be a datetime.timedelta or a string"),
        (VIEW.replace('ttl="2h"', 'ttl="two hours"'), "ttl must be a datetime.timedelta or a string"),
        (VIEW.replace('ttl="2h"', "ttl=timedelta(seconds=-5)"), "ttl must be a positive whole number"),
        (VIEW.replace('"weather.parquet"', '"missing.parquet"'), "missing.parquet' does not exist"),
        (VIEW.replace('features=["weather_hourly:temp"]', 'features=["weather_hourly:wind"]'), "has no feature 'wind'"),
        (
            VIEW.replace('features=["weather_hourly:temp"]', 'features=["rain:temp"]'),
            "'rain:temp' names no feature view",
        ),
        (VIEW.replace('Field("temp", "float")', 'Field("temp", "decimal")'), "dtype must be one of"),
        (VIEW + "raise RuntimeError('boom')\n", "failed to run: RuntimeError: boom"),
        (VIEW + "def broken(:\n", "line"),
        (VIEW.replace('"weather_hourly", entities', '"weather-hourly", entities'), "must start with a letter"),
    ],
)
def test_hostile_definitions_are_refused_at_plan(
    features_store: FeatureStore, write_definitions: Callable[[str], Path], body: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        features_store.plan(ADMIN, write_definitions(body))
    assert message in str(caught.value)
    assert features_store.list(ADMIN) == []


def test_every_problem_is_reported_at_once(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    body = VIEW.replace('timestamp="ts"', 'timestamp="when"').replace('Field("hum", "float")', 'Field("wind", "float")')
    with pytest.raises(InvalidInput) as caught:
        features_store.plan(ADMIN, write_definitions(body))
    assert "'when'" in str(caught.value) and "'wind'" in str(caught.value)


def test_a_file_that_is_not_python_is_refused(features_store: FeatureStore, tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text("a: 1")
    with pytest.raises(InvalidInput, match="not a Python file"):
        features_store.plan(ADMIN, tmp_path / "features.yaml")


def test_deleting_a_view_a_deployment_uses_is_refused(
    features_store: FeatureStore, write_definitions: Callable[[str], Path]
) -> None:
    """The deployment serves a model version trained on a training set joined from the view."""
    features_store.apply(ADMIN, write_definitions(VIEW))
    run_id = "a" * 32
    with features_store.store.write("ann") as unit:
        project = unit.projects.get_or_create("default")
        experiment = unit.experiments.get_or_create(project, "bike")
        unit.runs.create(run_id, experiment.id, "train", 1000, None)
    labels = pd.DataFrame({"station_id": [1], "event_timestamp": pd.to_datetime(["2012-01-01 00:30"], utc=True)})
    features_store.training_set(ADMIN, labels, ["weather_hourly:temp"], run_id=run_id)
    with features_store.store.write("ann") as unit:
        project = unit.projects.get("default")
        unit.models.create(project, "bike", "", "ann", {})
        unit.model_versions.create(unit.models.lock("bike"), run_id, "model", "e" * 64, "sklearn", None, "", {}, "ann")
        unit.deployments.save(
            project,
            Deployment("bike-demand", "default", "direct", 0, (DeploymentVersion("bike", 1, 100, "stable"),), "stable"),
        )
    without_view = write_definitions("station = Entity('station', join_keys=['station_id'])\n")
    with pytest.raises(InvalidInput, match=r"'weather_hourly' is used by deployment.*bike-demand"):
        features_store.plan(ADMIN, without_view)
    with pytest.raises(InvalidInput):
        features_store.apply(ADMIN, without_view)
    assert features_store.get(ADMIN, "feature_view", "weather_hourly").version == 1


def test_a_dataset_source_reads_the_logged_dataset_and_notices_a_changed_file(
    features_store: FeatureStore, write_definitions: Callable[[str], Path], weather: Path
) -> None:
    from loopml.data import content_digest

    frame = pd.read_parquet(weather)
    digest = content_digest(frame)
    with features_store.store.write("ann") as unit:
        project = unit.projects.get_or_create("default")
        experiment = unit.experiments.get_or_create(project, "bike")
        unit.runs.create("b" * 32, experiment.id, "ingest", 1000, None)
        unit.datasets.link("b" * 32, DatasetInput("weather", digest, (), len(frame), str(weather), "training"))
    body = VIEW.replace(
        'FileSource("weather.parquet", timestamp="ts", created="created_at")',
        f'DatasetSource("{digest}", timestamp="ts", created="created_at")',
    )
    features_store.apply(ADMIN, write_definitions(body))
    labels = pd.DataFrame({"station_id": [2], "event_timestamp": pd.to_datetime(["2012-01-01 01:30"], utc=True)})
    assert features_store.training_set(ADMIN, labels, ["weather_hourly:hum"])["hum"].tolist() == [0.6]
    frame.assign(hum=[0.9, 0.9]).to_parquet(weather)
    from loopml.errors import IntegrityError

    with pytest.raises(IntegrityError, match="changed since it was logged"):
        features_store.training_set(ADMIN, labels, ["weather_hourly:hum"])
