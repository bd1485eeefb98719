"""The MLflow client's model flow against a real `loopml server` process, then `loopml deploy` and a `loopml
serve` replica serving what MLflow registered: the whole migration story of issue 13, end to end.

`mlflow.sklearn.log_model(..., registered_model_name=...)` (MLflow 3: a logged model, its files through the
artifact proxy, finalize, register), `set_registered_model_alias`, `mlflow.pyfunc.load_model` by alias and by
version (downloads through the artifact proxy), then `loopml deploy create ... --model name@champion` and
predictions from the replica, equal to the model's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import ADMIN, ServerProcess, free_port

mlflow = pytest.importorskip("mlflow")

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["temp", "atemp", "hum", "windspeed", "hr"]


@pytest.fixture
def mlflow_client(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ADMIN)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx fails the test at once, not in minutes
    mlflow.set_tracking_uri(server.uri)
    try:
        yield server
    finally:
        mlflow.set_tracking_uri(None)


def _loopml(server: ServerProcess, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_TRACKING_URI=server.uri, LOOPML_TOKEN=ADMIN)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("loopml")), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _replica(server: ServerProcess, deployment: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(server.home), LOOPML_DATABASE_URL=server.database_url)
    replica = subprocess.Popen(
        [str(Path(sys.executable).with_name("loopml")), "serve", "--deployments", deployment, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert replica.poll() is None, "the replica exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return replica
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    replica.kill()
    raise AssertionError("the replica was not ready within 90 s")


def test_mlflow_logs_and_registers_loopml_deploys_and_serves(mlflow_client: ServerProcess) -> None:
    from sklearn.tree import DecisionTreeRegressor

    server = mlflow_client
    frame = pd.read_csv(DATA, nrows=400)
    x, y = frame[FEATURES], frame["cnt"].astype("float64")
    rows = x.iloc[-20:].reset_index(drop=True)
    model = DecisionTreeRegressor(max_depth=5, random_state=0).fit(x, y)
    expected = model.predict(rows)

    mlflow.set_experiment("bikes")
    with warnings.catch_warnings(), mlflow.start_run() as run:
        warnings.simplefilter("ignore")  # mlflow's own hints (integer columns, pip inference)
        mlflow.log_param("max_depth", 5)
        mlflow.log_metric("rmse", 42.0)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="bikes",
            input_example=x.head(3),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    assert str(info.registered_model_version) == "1"
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("bikes", "champion", "1")
    assert client.get_model_version_by_alias("bikes", "champion").run_id == run.info.run_id

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_alias = mlflow.pyfunc.load_model("models:/bikes@champion")
        by_version = mlflow.pyfunc.load_model("models:/bikes/1")
    np.testing.assert_allclose(by_alias.predict(rows), expected)
    np.testing.assert_allclose(by_version.predict(rows), expected)

    # the same version in loopml: a package with a sha256 manifest, the MLmodel's signature, audited
    headers = {"Authorization": f"Bearer {ADMIN}"}
    version = httpx.get(f"{server.uri}/api/v1/models/bikes/versions/1", headers=headers).json()["model_version"]
    assert version["flavor"] == "sklearn" and len(version["manifest_digest"]) == 64
    assert [c["name"] for c in version["signature"]["inputs"]] == FEATURES
    audit = httpx.get(f"{server.uri}/api/v1/audit", headers=headers).json()["events"]
    assert {"logged_model.finalize", "model_version.create", "model.set_alias"} <= {e["action"] for e in audit}

    _loopml(server, "deploy", "create", "bikes", "--model", "bikes@champion")
    port = free_port()
    replica = _replica(server, "bikes", port)
    try:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/deployments/bikes/predict",
            json={"records": rows.to_dict(orient="records")},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], expected)
        invocations = httpx.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_split": rows.to_dict(orient="split")}, timeout=30
        )
        assert invocations.status_code == 200, invocations.text
        np.testing.assert_allclose(invocations.json()["predictions"], expected)
    finally:
        replica.terminate()
        replica.wait(30)


def test_the_mlflow_client_sees_registry_errors_with_mlflow_codes(mlflow_client: ServerProcess) -> None:
    from mlflow.exceptions import MlflowException, RestException

    client = mlflow.MlflowClient()
    client.create_registered_model("churn", tags={"team": "risk"}, description="who leaves")
    with pytest.raises(RestException) as duplicate:
        client.create_registered_model("churn")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("nope")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    found = client.search_registered_models(filter_string="name LIKE 'ch%'")
    assert [m.name for m in found] == ["churn"] and found[0].tags == {"team": "risk"}
    client.delete_registered_model("churn")
    assert client.search_registered_models(filter_string="name = 'churn'") == []
