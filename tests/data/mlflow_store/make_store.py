"""Write the MLflow store of tests/importer/test_mlflow_store.py with the real `mlflow` package.

Run from the repository root, in the anchors virtualenv (mlflow is not a loopml dependency):

    .venv-anchors/bin/python tests/data/mlflow_store/make_store.py

It starts `mlflow server` on a SQLite database with proxied artifacts (the usual team setup, so every
artifact URI is `mlflow-artifacts:/...`), logs through the MLflow client what a user's history holds
(experiments with tags, nested runs, params, tags, metric histories with NaN and inf, artifacts, a deleted
run, sklearn models registered as two versions with an alias, tags and a stage), then stops the server.
Writes tests/data/mlflow_store/mlflow.db and tests/data/mlflow_store/mlartifacts/, and expected.json (what
the test checks against). Not collected by pytest (the name does not start with `test_`).
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient
from sklearn.tree import DecisionTreeRegressor

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["temp", "atemp", "hum", "windspeed", "hr"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    warnings.simplefilter("ignore")
    (HERE / "mlflow.db").unlink(missing_ok=True)
    shutil.rmtree(HERE / "mlartifacts", ignore_errors=True)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{HERE / 'mlflow.db'}",
            "--artifacts-destination",
            str(HERE / "mlartifacts"),
            "--workers",
            "1",
        ],
        cwd=HERE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        mlflow.set_tracking_uri(url)
        expected = _log(url)
    finally:
        server.terminate()
        server.wait(30)
    with sqlite3.connect(HERE / "mlflow.db") as db:
        db.execute("VACUUM")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


def _log(url: str) -> dict[str, object]:
    client = MlflowClient()
    frame = pd.read_csv(DATA, nrows=300)
    x, y = frame[FEATURES], frame["cnt"].astype("float64")
    rows = frame.iloc[280:300][FEATURES].reset_index(drop=True)

    mlflow.set_experiment("bikes")
    mlflow.set_experiment_tag("team", "forecasting")
    runs: dict[str, dict[str, object]] = {}
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("dataset", "bike_sharing")
        mlflow.set_tag("stage", "search")
        for depth in (2, 4):
            with mlflow.start_run(run_name=f"depth-{depth}", nested=True) as child:
                tree = DecisionTreeRegressor(max_depth=depth, random_state=0).fit(x, y)
                mlflow.log_params({"max_depth": depth, "criterion": "squared_error"})
                for step in range(5):
                    mlflow.log_metric("rmse", 100.0 / (step + depth), step=step)
                mlflow.log_metric("odd", math.nan, step=0)
                mlflow.log_metric("odd", math.inf, step=1)
                mlflow.log_text(f"depth {depth}\n", "notes/readme.txt")
                mlflow.log_dict({"depth": depth}, "config.json")
                mlflow.sklearn.log_model(
                    tree,
                    name="model",
                    registered_model_name="bikes-tree",
                    input_example=x.head(3),
                    serialization_format="skops",
                    skops_trusted_types=["sklearn.tree._tree.Tree"],
                )
                runs[child.info.run_id] = {"depth": depth, "predictions": tree.predict(rows).tolist()}
    mlflow.set_experiment("scratch")
    with mlflow.start_run(run_name="failed-try") as failed:
        mlflow.log_metric("loss", 3.5)
        mlflow.end_run(status="FAILED")
    with mlflow.start_run(run_name="thrown-away") as deleted:
        mlflow.log_metric("loss", 9.0)
    client.delete_run(deleted.info.run_id)

    client.update_registered_model("bikes-tree", description="hourly rentals")
    client.set_registered_model_tag("bikes-tree", "owner", "ann")
    client.set_model_version_tag("bikes-tree", "2", "validated", "yes")
    client.update_model_version("bikes-tree", "2", description="deeper tree")
    client.set_registered_model_alias("bikes-tree", "champion", "2")
    client.transition_model_version_stage("bikes-tree", "1", "Archived")
    return {
        "parent_run_id": parent.info.run_id,
        "failed_run_id": failed.info.run_id,
        "deleted_run_id": deleted.info.run_id,
        "children": runs,
        "rows": rows.to_dict(orient="list"),
        "mlflow_version": mlflow.__version__,
    }


if __name__ == "__main__":
    main()
