"""`loopml features plan|apply|materialize|list|show` on the embedded store."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd

from .conftest import Cli

DEFINITIONS = """
from loopml.features import Entity, FeatureView, Field, FileSource
station = Entity("station", join_keys=["station_id"])
weather = FeatureView("weather_hourly", entities=[station], ttl="2h",
                      source=FileSource("weather.parquet", timestamp="ts"),
                      schema=[Field("temp", "float")])
"""


def test_plan_apply_materialize_list_and_show(cli: Cli, tmp_path: Path) -> None:
    ts = pd.to_datetime(["2012-01-01 00:00", "2012-01-01 01:00", "2012-01-02 00:00"], utc=True)
    pd.DataFrame({"station_id": [1, 1, 2], "ts": ts, "temp": [0.1, 0.2, 0.3]}).to_parquet(tmp_path / "weather.parquet")
    definitions = tmp_path / "features.py"
    definitions.write_text(DEFINITIONS)

    planned = cli("features", "plan", str(definitions))
    assert planned.exit_code == 0, planned.output
    assert "weather_hourly" in planned.stdout and "plan: 2 to create" in planned.stdout
    applied = cli("features", "apply", str(definitions), "--json")
    assert applied.exit_code == 0, applied.output
    assert {c["version"] for c in orjson.loads(applied.stdout)["changes"]} == {1}
    assert "no changes" in cli("features", "plan", str(definitions)).stdout

    first = cli("features", "materialize", "weather_hourly", "--end", "2012-01-01T12:00", "--json")
    assert first.exit_code == 0, first.output
    assert orjson.loads(first.stdout)["rows"] == 1  # station 2 has no row before the end yet
    second = cli("features", "materialize", "weather_hourly", "--end", "2012-12-31")
    assert second.exit_code == 0, second.output
    assert "from 2012-01-01T12:00:00Z to 2012-12-31T00:00:00Z: 1 entities" in second.stdout

    listed = cli("features", "list", "--json")
    assert [(d["kind"], d["name"], d["version"]) for d in orjson.loads(listed.stdout)] == [
        ("entity", "station", 1),
        ("feature_view", "weather_hourly", 1),
    ]
    shown = orjson.loads(cli("features", "show", "feature_view", "weather_hourly").stdout)
    assert shown["spec"]["ttl_seconds"] == 7200


def test_problems_exit_2_with_a_message(cli: Cli, tmp_path: Path) -> None:
    definitions = tmp_path / "features.py"
    definitions.write_text(DEFINITIONS)  # weather.parquet is missing
    result = cli("features", "plan", str(definitions))
    assert result.exit_code == 2
    assert "weather.parquet' does not exist" in result.stderr
    missing = cli("features", "materialize", "rain", "--end", "2012-12-31")
    assert missing.exit_code == 2 and "'rain' does not exist" in missing.stderr
    bad_time = cli("features", "show", "view", "x")
    assert bad_time.exit_code == 2 and "kind must be" in bad_time.stderr
