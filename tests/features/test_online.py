"""Online stores (SQLite and Redis), materialization (full, incremental, resumed after SIGKILL), online
lookups with freshness and defaults, and push (online and offline)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loopml.domain import Principal, Role
from loopml.errors import InvalidInput, NotFound
from loopml.features import FeatureStore, OnlineStore

ADMIN = Principal("ann", Role.ADMIN, None)

DEFINITIONS = """
station = Entity("station", join_keys=["station_id"])
weather = FeatureView("weather_hourly", entities=[station], ttl="2h",
                      source=FileSource("weather/*.parquet", timestamp="ts", created="created_at"),
                      schema=[Field("temp", "float"), Field("hum", "float", default=0.5)])
"""


def weather_rows(stations: range, hours: range) -> pd.DataFrame:
    rows = [
        {"station_id": s, "ts": pd.Timestamp("2012-01-01", tz="UTC") + pd.Timedelta(hours=h), "temp": s + h / 100}
        for s in stations
        for h in hours
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(created_at=frame["ts"], hum=frame["temp"] / 10)


def write_weather(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    (tmp_path / "weather").mkdir(exist_ok=True)
    frame.to_parquet(tmp_path / "weather" / name)


def test_an_online_store_keeps_the_newest_row_per_key_whatever_the_order(online: OnlineStore, project: str) -> None:
    ns = f"{project}/v"
    online.write(ns, [b"[1]", b"[2]"], [20, 10], [0, 0], [b"new", b"two"])
    online.write(ns, [b"[1]"], [10], [5], [b"older"])  # late-arriving older row: ignored
    online.write(ns, [b"[1]"], [20], [-1], [b"tie-lower-created"])  # same time, lower created: ignored
    online.write(ns, [b"[2]"], [10], [0], [b"two-again"])  # exact tie: the later write wins (idempotent)
    assert online.read([(ns, [b"[1]", b"[2]", b"[3]"])]) == [[(20, b"new"), (10, b"two-again"), None]]
    online.write(ns, [b"[1]"], [20], [1], [b"tie-higher-created"])
    assert online.read([(ns, [b"[1]"]), (f"{project}/other", [b"[1]"])]) == [[(20, b"tie-higher-created")], [None]]


def test_materialize_full_then_incremental_and_read_online_with_freshness(
    fs: FeatureStore, project: str, tmp_path: Path, write_definitions: Callable[[str], Path]
) -> None:
    write_weather(tmp_path, weather_rows(range(1, 4), range(0, 5)), "a.parquet")
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)
    calls: list[tuple[int, int]] = []
    job = fs.materialize(
        ADMIN, "weather_hourly", "2012-01-01T03:00", project=project, progress=lambda d, t: calls.append((d, t))
    )
    assert job.finished and job.rows == 3
    assert calls[0] == (0, job.buckets) and calls[-1] == (job.buckets, job.buckets)
    got = fs.online(ADMIN, ["weather_hourly:temp", "weather_hourly:hum"], {"station_id": [1, 3, 9]}, project)
    assert got.values["temp"] == [1.02, 3.02, None]  # the 02:00 rows: 03:00 is the (exclusive) end
    assert got.values["hum"] == [pytest.approx(0.102), pytest.approx(0.302), 0.5]  # the declared default
    age = got.age_seconds["weather_hourly"]
    expected = time.time() - pd.Timestamp("2012-01-01T02:00", tz="UTC").timestamp()
    assert age[0] == pytest.approx(expected, abs=60) and age[2] is None

    incremental = fs.materialize(ADMIN, "weather_hourly", "2012-01-02", project=project)
    assert incremental.start_ms == job.end_ms  # from where the last run ended
    assert fs.online(ADMIN, ["weather_hourly:temp"], {"station_id": [1]}, project).values["temp"] == [1.04]
    with pytest.raises(InvalidInput, match="nothing to materialize"):
        fs.materialize(ADMIN, "weather_hourly", "2012-01-01T05:00", project=project)


def test_push_writes_online_and_appends_offline(
    fs: FeatureStore, project: str, tmp_path: Path, write_definitions: Callable[[str], Path]
) -> None:
    write_weather(tmp_path, weather_rows(range(1, 3), range(0, 2)), "a.parquet")
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)
    pushed = weather_rows(range(2, 3), range(5, 6)).assign(temp=99.0)
    assert fs.push(ADMIN, "weather_hourly", pushed, project) == 1
    assert fs.online(ADMIN, ["weather_hourly:temp"], {"station_id": [2, 1]}, project).values["temp"] == [99.0, None]
    labels = pd.DataFrame(
        {"station_id": [2, 2], "event_timestamp": pd.to_datetime(["2012-01-01 01:30", "2012-01-01 05:30"], utc=True)}
    )
    assert fs.training_set(ADMIN, labels, ["weather_hourly:temp"], project=project)["temp"].tolist() == [2.01, 99.0]
    with pytest.raises(InvalidInput, match="lack the columns"):
        fs.push(ADMIN, "weather_hourly", pushed.drop(columns=["hum"]), project)
    with pytest.raises(InvalidInput, match="is float; the pushed rows hold VARCHAR"):
        fs.push(ADMIN, "weather_hourly", pushed.assign(temp="warm"), project)
    with pytest.raises(NotFound):
        fs.push(ADMIN, "rain", pushed, project)


def test_online_lookups_check_their_request(
    fs: FeatureStore, project: str, tmp_path: Path, write_definitions: Callable[[str], Path]
) -> None:
    write_weather(tmp_path, weather_rows(range(1, 2), range(0, 1)), "a.parquet")
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)
    with pytest.raises(InvalidInput, match="needs the entity keys"):
        fs.online(ADMIN, ["weather_hourly:temp"], {"station": [1]}, project)
    with pytest.raises(InvalidInput, match="same length"):
        fs.online(ADMIN, ["weather_hourly:temp"], {"station_id": [1], "other": [1, 2]}, project)
    with pytest.raises(NotFound, match="has no feature 'wind'"):
        fs.online(ADMIN, ["weather_hourly:wind"], {"station_id": [1]}, project)
    with pytest.raises(InvalidInput, match="view:feature"):
        fs.online(ADMIN, ["weather_hourly.temp"], {"station_id": [1]}, project)


KILLED = """
import os, sys, time
from pathlib import Path
from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.features import FeatureStore, open_online_store
from loopml.store import MetadataStore

db_url, online_url, tmp, project, stop_after = sys.argv[1:6]
tmp = Path(tmp)
fs = FeatureStore(MetadataStore.open(db_url), open_artifact_store((tmp / "artifacts").as_uri()),
                  lambda: open_online_store(online_url, tmp), tmp / "cache")

def progress(done, total):
    print(f"{done}/{total}", flush=True)
    if done == int(stop_after):
        time.sleep(600)  # killed here, with buckets written and recorded

fs.materialize(Principal("ann", Role.ADMIN, None), "weather_hourly", "2013-01-01", project=project, progress=progress)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_a_materialization_killed_with_sigkill_resumes_without_losing_or_duplicating_rows(
    db_url: str,
    online_url: str,
    fs: FeatureStore,
    project: str,
    tmp_path: Path,
    write_definitions: Callable[[str], Path],
) -> None:
    frame = weather_rows(range(0, 400), range(0, 6))
    write_weather(tmp_path, frame, "a.parquet")
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)
    script = tmp_path / "materialize.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, str(script), db_url, online_url, str(tmp_path), project]
    with subprocess.Popen([*args, "5"], stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("5/"):
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

    resumed = subprocess.run([*args, "-1"], capture_output=True, text=True, env=env, timeout=120, check=True)
    lines = resumed.stdout.split()
    assert lines[0] == "5/16" and lines[-1] == "finished"  # resumed at the first bucket not recorded as done
    with fs.store.read() as unit:
        job, watermark = unit.features.materialization(
            unit.projects.get(project), "weather_hourly", fs.online_store().name
        )
    assert job is not None and job.finished and job.rows == 400  # each entity counted once
    assert watermark == pd.Timestamp("2013-01-01", tz="UTC").value // 1_000_000
    online = fs.online(ADMIN, ["weather_hourly:temp"], {"station_id": list(range(0, 400))}, project)
    assert online.values["temp"] == [s + 0.05 for s in range(0, 400)]  # every entity, its latest row


def test_materialize_applies_the_tie_rule(
    fs: FeatureStore, project: str, tmp_path: Path, write_definitions: Callable[[str], Path]
) -> None:
    """Same entity and time: the higher created time wins online too, and an earlier corrected row loses."""
    ts = pd.to_datetime(["2012-01-01 05:00", "2012-01-01 05:00", "2012-01-01 04:00"], utc=True)
    created = pd.to_datetime(["2012-01-01 05:10", "2012-01-01 05:05", "2012-01-02 00:00"], utc=True)
    frame = pd.DataFrame({"station_id": [1, 1, 1], "ts": ts, "created_at": created, "temp": [2.0, 1.0, 9.0]})
    write_weather(tmp_path, frame.assign(hum=0.1), "a.parquet")
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)
    fs.materialize(ADMIN, "weather_hourly", "2012-02-01", project=project)
    assert fs.online(ADMIN, ["weather_hourly:temp"], {"station_id": [1]}, project).values["temp"] == [2.0]
