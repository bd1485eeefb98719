"""`client.features` behaves the same on the embedded backend and over HTTP: definitions sent as data,
online lookups, pushes, materialization and its status, and the refusals of malformed input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidInput, NotFound

DEFINITIONS = """
from loopml.features import Entity, FeatureService, FeatureView, Field, FileSource

station = Entity("station", join_keys=["station_id"])
weather = FeatureView(
    "weather_hourly",
    entities=[station],
    ttl="1h",
    source=FileSource("weather.parquet", timestamp="ts", created="created_at"),
    schema=[Field("temp", "float"), Field("hum", "float", default=0.5)],
)
bike_model = FeatureService("bike_model", features=["weather_hourly:temp", "weather_hourly:hum"])
"""


@pytest.fixture(autouse=True)
def sources_readable_by_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP side's server reads feature sources under the test's directory only (set before `client`)."""
    monkeypatch.setenv("LOOPML_FEATURES_SOURCE_DIRS", str(tmp_path))
    pd.DataFrame(
        {
            "station_id": [1, 1, 1, 2],
            "ts": pd.to_datetime(["2012-01-01 10:00", "2012-01-01 10:00", "2012-01-01 11:00", "2012-01-01 10:00"]),
            "created_at": pd.to_datetime(
                ["2012-01-01 10:00", "2012-01-01 10:05", "2012-01-01 11:00", "2012-01-01 10:00"]
            ),
            "temp": [0.20, 0.22, 0.30, 0.50],
            "hum": [0.80, 0.81, 0.70, 0.40],
        }
    ).to_parquet(tmp_path / "weather.parquet")
    (tmp_path / "features.py").write_text(textwrap.dedent(DEFINITIONS))


@pytest.mark.operations(
    "plan_features",
    "apply_features",
    "list_feature_definitions",
    "get_feature_definition",
    "online_features",
    "push_features",
    "materialize_features",
    "get_materialization",
)
def test_definitions_online_values_push_and_materialization(client: loopml.Client, tmp_path: Path) -> None:
    features = client.features
    plan = features.plan(tmp_path / "features.py")
    assert {(c.kind, c.name, c.action) for c in plan.changes} == {
        ("entity", "station", "create"),
        ("feature_view", "weather_hourly", "create"),
        ("feature_service", "bike_model", "create"),
    }
    applied = features.apply(tmp_path / "features.py")
    assert {c.version for c in applied.changes} == {1} and applied.project == "default"
    assert not features.plan(tmp_path / "features.py").has_changes
    stored = {(d.kind, d.name) for d in features.list()}
    assert ("feature_view", "weather_hourly") in stored
    view = features.get("feature_view", "weather_hourly")
    assert view.version == 1 and view.spec["ttl_seconds"] == 3600
    # The stored specs are data: sending them back is the same set, unchanged.
    again = features.apply([{"kind": d.kind, "name": d.name, "spec": d.spec} for d in features.list()])
    assert not again.has_changes

    with pytest.raises(NotFound):
        features.materialization("weather_hourly")  # never materialized
    job = features.materialize("weather_hourly", end="2012-01-02")
    assert (job.finished, job.rows) == (True, 2)
    status = features.materialization("weather_hourly")
    assert (status.status, status.rows, status.done_buckets, status.end_ms) == ("done", 2, 16, job.end_ms)

    found = features.online("bike_model", {"station_id": [1, 2, 7]})
    assert found.values["temp"] == [0.30, 0.50, None]
    assert found.values["hum"] == [0.70, 0.40, 0.5]  # station 7: the declared default
    ages = found.age_seconds["weather_hourly"]
    assert ages[0] is not None and ages[0] > 0 and ages[2] is None

    rows = pd.DataFrame(
        {
            "station_id": [2],
            "ts": pd.to_datetime(["2012-01-01 12:00"], utc=True),
            "created_at": pd.to_datetime(["2012-01-01 12:00"], utc=True),
            "temp": [0.55],
            "hum": [0.35],
        }
    )
    assert features.push("weather_hourly", rows) == 1
    assert features.online(["weather_hourly:temp"], {"station_id": [2]}).values["temp"] == [0.55]


def test_malformed_feature_calls_are_refused_with_what_to_fix(client: loopml.Client, tmp_path: Path) -> None:
    features = client.features
    features.apply(tmp_path / "features.py")
    with pytest.raises(InvalidInput, match="join_keys"):
        features.apply([{"kind": "entity", "name": "station", "spec": {"join_keys": []}}])
    with pytest.raises(InvalidInput, match="not among the definitions sent"):
        view = features.get("feature_view", "weather_hourly")
        features.apply([{"kind": "feature_view", "name": "weather_hourly", "spec": view.spec}])
    with pytest.raises(InvalidInput, match="ttl_seconds"):
        entity = features.get("entity", "station")
        bad = {**features.get("feature_view", "weather_hourly").spec, "ttl_seconds": "2h"}
        features.apply(
            [
                {"kind": "entity", "name": "station", "spec": entity.spec},
                {"kind": "feature_view", "name": "weather_hourly", "spec": bad},
            ]
        )
    assert features.get("feature_view", "weather_hourly").version == 1  # nothing was stored
    with pytest.raises(NotFound):
        features.online(["nowhere:temp"], {"station_id": [1]})
    with pytest.raises(InvalidInput, match="same length"):
        features.online(["weather_hourly:temp"], {"station_id": [1, 2], "city": [1]})
    with pytest.raises(InvalidInput, match="entity keys"):
        features.online(["weather_hourly:temp"], {"city": [1]})
    with pytest.raises(InvalidInput, match="lack the columns"):
        features.push("weather_hourly", pd.DataFrame({"station_id": [1], "temp": [0.1]}))
    with pytest.raises(InvalidInput, match="ISO times"):
        features.push(
            "weather_hourly",
            {"station_id": [1], "ts": ["yesterday-ish"], "created_at": ["x"], "temp": [0.1], "hum": [0.2]},
        )
    with pytest.raises(InvalidInput, match="date or time"):
        features.materialize("weather_hourly", end="not a date")
    with pytest.raises(NotFound):
        features.materialize("nowhere", end="2012-01-02")
