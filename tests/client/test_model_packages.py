"""log_model -> register -> alias -> load, the same on the embedded and the HTTP backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

import loopml
from loopml.client.model_packages import LoggedModel
from loopml.errors import ArtifactCorrupted, InvalidInput, PermissionDenied

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]


@pytest.fixture(scope="module")
def bike() -> tuple[pd.DataFrame, pd.Series]:
    hours = pd.read_csv(DATA).head(2000)
    return hours[FEATURES], hours["cnt"]


class Doubler:
    """A user model with `predict`: stored with cloudpickle (the pyfunc flavor)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["temp"], dtype=float) * 2


def test_log_register_alias_load(client: loopml.Client, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    model = HistGradientBoostingRegressor(max_iter=15).fit(X, y)
    run = client.runs.create("bike-demand", "hgb")
    client.runs.log_metric(run.id, "rmse", 48.5)
    version = client.models.log(
        run.id, model, "bike-demand", input_example=X[:5], datasets={"training": X}, register=True
    )
    assert (version.name, version.version, version.flavor) == ("bike-demand", 1, "sklearn")
    assert version.metrics == {"rmse": 48.5}
    assert [role for _, role in version.datasets] == ["training"]
    assert [c["name"] for c in version.signature["inputs"]] == FEATURES
    client.models.set_alias("bike-demand", "champion", 1, reason="first model")

    champion = client.models.load("models:/bike-demand@champion")
    np.testing.assert_allclose(champion.predict(X[:50]), model.predict(X[:50]))
    with pytest.raises(InvalidInput, match="missing column 'hum'"):
        champion.predict(X.drop(columns=["hum"])[:1])

    copy = client.models.download("bike-demand@champion", tmp_path / "copy")  # loads with no server at all
    assert (copy / "loopml-model.json").is_file()
    np.testing.assert_allclose(client.models.load(copy).predict(X[:5]), model.predict(X[:5]))


def test_a_tampered_cached_package_is_refused(client: loopml.Client, bike: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = bike
    run = client.runs.create("bike-demand")
    client.models.log(
        run.id, HistGradientBoostingRegressor(max_iter=5).fit(X, y), "tamper", input_example=X[:2], register=True
    )
    directory = client.models.download("tamper/1")
    weights = directory / "model.skops"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorrupted, match=r"model\.skops"):
        client.models.load("models:/tamper/1")


def test_logging_without_registering(client: loopml.Client, bike: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = bike
    run = client.runs.create("bike-demand")
    logged = client.models.log(
        run.id, HistGradientBoostingRegressor(max_iter=5).fit(X, y), "draft", input_example=X[:2]
    )
    assert isinstance(logged, LoggedModel)
    assert {a.path for a in client.runs.artifacts(run.id)} >= {
        "models/draft/loopml-model.json",
        "models/draft/model.skops",
    }
    client.models.create("draft")
    version = client.models.create_version("draft", run.id, logged.artifact_path, logged.manifest_digest, logged.flavor)
    assert version.version == 1


def test_pickled_models_need_the_opt_in(client: loopml.Client, bike: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = bike
    run = client.runs.create("bike-demand")
    client.models.log(run.id, Doubler(), "doubler", input_example=X[:3], register=True)
    with pytest.raises(PermissionDenied, match="trust_pickle"):
        client.models.load("models:/doubler@latest")
    loaded = client.models.load("models:/doubler@latest", trust_pickle=True)
    np.testing.assert_allclose(loaded.predict(X[:4]), X["temp"][:4] * 2)
