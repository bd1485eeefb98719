"""Features at serving time: a deployment naming a feature service takes entity keys in the request, its
replica reads the features from the online store (SQLite or Redis) in the `fetch_features` stage, batched
across concurrent requests, and the request log keeps the values used; missing or stale entities are refused
or given the declared defaults, per the deployment's setting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.features import FeatureStore, open_online_store
from loopml.registry import save_model
from loopml.serving import DeploymentSpec, ModelHost, ServingVersion, StaticSpecSource, create_serving_app
from loopml.serving.features import FeatureFetcher
from loopml.serving.records import RequestRecord
from loopml.store import MetadataStore

ADMIN = Principal("ann", Role.ADMIN, None)

DEFINITIONS = """
station = Entity("station", join_keys=["station_id"])
weather = FeatureView(
    "weather_hourly",
    entities=[station],
    ttl="2h",
    source=FileSource("weather.parquet", timestamp="ts"),
    schema=[Field("temp", "float", default=0.25), Field("hum", "float", default=0.5)],
)
bike_model = FeatureService("bike_model", features=["weather_hourly:temp", "weather_hourly:hum"])
"""


class Sink:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear model of rentals on temp, hum (features) and hr (sent with the request)."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"hr": rng.integers(0, 24, 200), "temp": rng.random(200), "hum": rng.random(200)})
    model = LinearRegression().fit(frame, 100 * frame["temp"] - 20 * frame["hum"] + frame["hr"])
    path = tmp_path_factory.mktemp("package") / "bike"
    save_model(model, path, input_example=frame.iloc[:5])
    return path


@pytest.fixture
def store(online_url: str, project: str, tmp_path: Path, write_definitions: object) -> Iterator[FeatureStore]:
    """Definitions applied in `project`; stations 1 and 2 fresh (now), station 3 three hours old (past its TTL)."""
    now = pd.Timestamp.now(tz="UTC").floor("s")
    pd.DataFrame(
        {
            "station_id": [1, 2, 3],
            "ts": [now - pd.Timedelta("1min"), now - pd.Timedelta("1min"), now - pd.Timedelta("3h")],
            "temp": [0.3, 0.5, 0.9],
            "hum": [0.7, 0.4, 0.1],
        }
    ).to_parquet(tmp_path / "weather.parquet")
    meta = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    fs = FeatureStore(
        meta,
        open_artifact_store((tmp_path / "artifacts").as_uri()),
        lambda: open_online_store(online_url, tmp_path),
        tmp_path / "cache",
    )
    fs.apply(ADMIN, write_definitions(DEFINITIONS), project)  # type: ignore[operator]
    fs.materialize(ADMIN, "weather_hourly", end=now + pd.Timedelta("1h"), project=project)
    yield fs
    fs.close()
    meta.close()


def _app(package: Path, fs: FeatureStore, project: str, missing: str = "refuse", sink: Sink | None = None) -> object:
    spec = DeploymentSpec(
        "bike",
        (ServingVersion("bike", 1, package),),
        feature_service="bike_model",
        project=project,
        missing_features=missing,
    )
    fetcher = FeatureFetcher(lambda: fs)
    return create_serving_app(ModelHost(StaticSpecSource([spec])), request_log=sink, features=fetcher)


def _expected(package: Path, rows: list[dict[str, float]]) -> list[float]:
    from loopml.registry import load_model

    model = load_model(package)
    return [float(x) for x in model.predict(pd.DataFrame(rows)[["hr", "temp", "hum"]])]


def test_a_request_with_entity_keys_is_predicted_on_the_online_features_and_logged_with_them(
    package: Path, store: FeatureStore, project: str
) -> None:
    sink = Sink()
    app = _app(package, store, project, sink=sink)
    with TestClient(app) as client:  # type: ignore[arg-type]
        answer = client.post(
            "/v1/deployments/bike/predict", json={"records": [{"station_id": 1, "hr": 8}, {"station_id": 2, "hr": 9}]}
        )
        assert answer.status_code == 200, answer.text
        want = _expected(package, [{"hr": 8, "temp": 0.3, "hum": 0.7}, {"hr": 9, "temp": 0.5, "hum": 0.4}])
        assert answer.json()["predictions"] == pytest.approx(want)
        # OIP and MLflow's /invocations take the keys the same way
        oip = client.post(
            "/v2/models/bike/infer",
            json={"inputs": [{"name": "station_id", "shape": [1], "datatype": "INT64", "data": [1]},
                             {"name": "hr", "shape": [1], "datatype": "INT64", "data": [8]}]},
        )  # fmt: skip
        assert oip.status_code == 200, oip.text
        assert oip.json()["outputs"][0]["data"] == pytest.approx(want[:1])
    logged = sink.records[0].inputs
    assert logged == {"hr": [8, 9], "station_id": [1, 2], "temp": [0.3, 0.5], "hum": [0.7, 0.4]}


def test_missing_and_stale_entities_are_refused_or_get_the_declared_defaults(
    package: Path, store: FeatureStore, project: str
) -> None:
    with TestClient(_app(package, store, project)) as client:  # type: ignore[arg-type]
        for station in (7, 3):  # 7: no row at all; 3: its row is 3 h old, past the view's 2 h TTL
            answer = client.post("/v1/deployments/bike/predict", json={"records": [{"station_id": station, "hr": 8}]})
            assert answer.status_code == 404, answer.text
            error = answer.json()["error"]
            assert error["code"] == "features_not_found"
            assert f"station_id={station}" in error["message"] and "weather_hourly" in error["message"]
        missing_key = client.post("/v1/deployments/bike/predict", json={"records": [{"hr": 8}]})
        assert missing_key.status_code == 400 and "station_id" in missing_key.text
    sink = Sink()
    with TestClient(_app(package, store, project, missing="default", sink=sink)) as client:  # type: ignore[arg-type]
        rows = [{"station_id": 7, "hr": 8}, {"station_id": 3, "hr": 8}, {"station_id": 1, "hr": 8}]
        answer = client.post("/v1/deployments/bike/predict", json={"records": rows})
        assert answer.status_code == 200, answer.text
        want = _expected(package, [{"hr": 8, "temp": 0.25, "hum": 0.5}] * 2 + [{"hr": 8, "temp": 0.3, "hum": 0.7}])
        assert answer.json()["predictions"] == pytest.approx(want)
    assert sink.records[0].inputs["temp"] == [0.25, 0.25, 0.3]  # the declared defaults, as served


def test_concurrent_requests_share_online_reads(package: Path, store: FeatureStore, project: str) -> None:
    fetcher = FeatureFetcher(lambda: store)
    spec = DeploymentSpec("bike", (ServingVersion("bike", 1, package),), feature_service="bike_model", project=project)
    app = create_serving_app(ModelHost(StaticSpecSource([spec])), features=fetcher)

    async def run() -> list[httpx.Response]:
        await app.host.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
                body = {"records": [{"station_id": 1 + i % 2, "hr": 8} for i in range(1)]}
                return await asyncio.gather(
                    *(client.post("/v1/deployments/bike/predict", json=body) for _ in range(64))
                )
        finally:
            await app.host.stop()

    started = time.monotonic()
    answers = asyncio.run(run())
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert 1 <= fetcher.reads < 64, f"{fetcher.reads} reads for 64 concurrent requests"
    assert time.monotonic() - started < 120
    fetcher.close()
