"""A real `loopml serve` replica of a deployment that names a feature service: the request carries the
station id only, the replica reads the weather features from Redis, predicts, and logs the values it used."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import loopml
from loopml.errors import InvalidInput
from loopml.serving import read_segments

from .conftest import free_port

pytestmark = pytest.mark.slow
REDIS = os.environ.get("LOOPML_TEST_REDIS", "redis://127.0.0.1:6379/0")

DEFINITIONS = """
from loopml.features import Entity, FeatureService, FeatureView, Field, FileSource

station = Entity("station", join_keys=["station_id"])
weather = FeatureView("{view}", entities=[station], ttl="1d",
                      source=FileSource("weather.parquet", timestamp="ts"),
                      schema=[Field("temp", "float"), Field("hum", "float")])
bike_model = FeatureService("{service}", features=["{view}:temp", "{view}:hum"])
"""


@pytest.fixture
def view() -> Iterator[str]:
    """A view name of its own on the shared Redis (its keys removed after the test)."""
    import redis

    name = f"weather_{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS} is not reachable: {error}")
    yield name
    keys = list(client.scan_iter(match=f"lm:*/{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_replica_fetches_the_features_of_its_feature_service_from_redis(
    tmp_path: Path, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("LOOPML_ONLINE_STORE", REDIS)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    pd.DataFrame(
        {"station_id": [1, 2], "ts": [now - pd.Timedelta("5min")] * 2, "temp": [0.3, 0.8], "hum": [0.6, 0.2]}
    ).to_parquet(tmp_path / "weather.parquet")
    service = f"{view}_model"
    (tmp_path / "features.py").write_text(DEFINITIONS.format(view=view, service=service))
    frame = pd.DataFrame({"temp": [0.1, 0.4, 0.8, 0.6], "hum": [0.3, 0.5, 0.7, 0.9]})
    model = LinearRegression().fit(frame, 3 * frame["temp"] + frame["hum"])
    loopml.set_tracking_uri(str(home))
    try:
        with loopml.start_run(experiment="bike-demand") as run:
            version = run.log_model(model, name="bike-demand", input_example=frame[:2], register=True)
    finally:
        loopml.set_tracking_uri(None)
    with loopml.Client(home=home) as client:
        client.features.apply(tmp_path / "features.py")
        assert client.features.materialize(view, end=now + pd.Timedelta("1h")).rows == 2
        with pytest.raises(InvalidInput, match="does not exist"):
            client.deployments.deploy("bike-demand", f"bike-demand/{version.version}", feature_service="nope")
        client.deployments.deploy("bike-demand", f"bike-demand/{version.version}", feature_service=service)
        assert client.deployments.status("bike-demand").feature_service == service
        # a feature service (and its view) that a deployment serves cannot be deleted by an apply
        (tmp_path / "other.py").write_text(
            "from loopml.features import Entity\nstation = Entity('station', ['station_id'])\n"
        )
        with pytest.raises(InvalidInput, match="served by deployment"):
            client.features.apply(tmp_path / "other.py")

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(home), LOOPML_ONLINE_STORE=REDIS)
    port = free_port()
    command = [str(Path(sys.executable).with_name("loopml")), "serve", "--deployments", "bike-demand"]
    replica = subprocess.Popen(
        [*command, "--port", str(port), "--request-log", str(home / "request-log")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert replica.poll() is None, "the replica exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the replica was not ready within 120 s"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/deployments/bike-demand/predict"
        answer = httpx.post(url, json={"records": [{"station_id": 2}]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == pytest.approx(model.predict(pd.DataFrame({"temp": [0.8], "hum": [0.2]})))
        refused = httpx.post(url, json={"records": [{"station_id": 9}]}, timeout=30)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "features_not_found"
    finally:
        replica.send_signal(signal.SIGTERM)
        replica.wait(60)
    logged = read_segments(home / "request-log" / "sealed").to_pylist()
    assert any("station_id" in str(row) and "0.8" in str(row) for row in logged), logged[:2]
