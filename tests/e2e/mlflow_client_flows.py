"""MLflow client code, unchanged, run against a `loopml server` by tests/e2e/test_mlflow_client.py.

Run as `python mlflow_client_flows.py <flow>` by an interpreter that has MLflow (it is not loopml's
environment: MLflow's pins stay out of ours); MLFLOW_TRACKING_URI and the credentials come from the
environment. Each flow prints one JSON object that the test checks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def _code(call: Callable[[], object]) -> str | None:
    try:
        call()
    except MlflowException as exc:
        return str(exc.error_code)
    return None


def quickstart() -> dict[str, Any]:
    """The issue's flow minus the registry: experiment, run, param, metric, artifact, search."""
    mlflow.set_experiment("fraud")
    folder = tempfile.mkdtemp()
    notes = os.path.join(folder, "notes.txt")
    with open(notes, "w") as f:
        f.write("threshold 0.7")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("learning_rate", 0.01)
        mlflow.log_metric("accuracy", 0.94)
        for step in range(10):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_artifact(notes)
        mlflow.log_dict({"features": ["amount", "hour"]}, "config/features.json")
        mlflow.log_text("hello", "texts/hello.txt")
        mlflow.set_tags({"team": "risk", "stage": "dev"})
        with mlflow.start_run(run_name="fold-1", nested=True) as child:
            mlflow.log_metric("accuracy", 0.91)
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    found = mlflow.search_runs(filter_string="metrics.accuracy > 0.9", order_by=["metrics.accuracy DESC"])
    nested = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    downloaded = client.download_artifacts(run.info.run_id, "notes.txt", folder)
    features = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config/features.json")
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "status": got.info.status,
        "run_name": got.info.run_name,
        "params": got.data.params,
        "metrics": got.data.metrics,
        "tags": {k: v for k, v in got.data.tags.items() if k in ("team", "stage", "mlflow.runName")},
        "loss_steps": [m.step for m in client.get_metric_history(run.info.run_id, "loss")],
        "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id)),
        "notes": open(downloaded).read(),
        "features": features,
        "search": [(r, a) for r, a in zip(found["run_id"], found["metrics.accuracy"], strict=True)],
        "nested": [r.info.run_id for r in nested],
        "child": child.info.run_id,
    }


def limits() -> dict[str, Any]:
    """log_batch at MLflow's limits and one over; the client's error codes for what does not exist."""
    client = MlflowClient()
    experiment_id = client.create_experiment("limits")
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric(f"m{i % 10}", float(i), 1700000000000 + i, i) for i in range(1000)]
    params = [Param(f"p{i}", str(i)) for i in range(100)]
    tags = [RunTag(f"t{i}", str(i)) for i in range(100)]
    client.log_batch(run_id, metrics=metrics)
    client.log_batch(run_id, params=params, tags=tags)
    store = client._tracking_client.store
    over = {
        "metrics": _code(lambda: store.log_batch(run_id, metrics=[*metrics, metrics[0]], params=[], tags=[])),
        "params": _code(lambda: store.log_batch(run_id, metrics=[], params=[*params, Param("x", "1")], tags=[])),
        "tags": _code(lambda: store.log_batch(run_id, metrics=[], params=[], tags=[*tags, RunTag("x", "1")])),
    }
    run = client.get_run(run_id)
    return {
        "metric_keys": len(run.data.metrics),
        "history": len(client.get_metric_history(run_id, "m3")),
        "params": len(run.data.params),
        "over": over,
        "missing_run": _code(lambda: client.get_run("0" * 32)),
        "duplicate_experiment": _code(lambda: client.create_experiment("limits")),
        "missing_experiment": _code(lambda: client.get_experiment("987654")),
        "changed_param": _code(lambda: client.log_param(run_id, "p1", "changed")),
    }


def paging() -> dict[str, Any]:
    """search_runs pages with next_page_token; deleted runs leave and come back."""
    client = MlflowClient()
    experiment_id = client.create_experiment("paging")
    ids = []
    for i in range(25):
        run = client.create_run(experiment_id, start_time=1700000000000 + i)
        client.log_metric(run.info.run_id, "score", i / 25)
        ids.append(run.info.run_id)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.search_runs(
            [experiment_id], max_results=10, order_by=["attributes.start_time ASC"], page_token=token
        )
        seen += [r.info.run_id for r in page]
        pages += 1
        token = page.token
        if not token:
            break
    client.delete_run(ids[0])
    active = len(client.search_runs([experiment_id], max_results=100))
    deleted = [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)]
    lifecycle = client.get_run(ids[0]).info.lifecycle_stage
    client.restore_run(ids[0])
    best = mlflow.search_runs([experiment_id], filter_string="metrics.score >= 0.9", order_by=["metrics.score DESC"])
    return {
        "in_order": seen == ids,
        "pages": pages,
        "active_after_delete": active,
        "deleted": deleted == [ids[0]],
        "lifecycle": lifecycle,
        "after_restore": len(client.search_runs([experiment_id], max_results=100)),
        "best": list(best["metrics.score"]),
    }


def logging_helpers() -> dict[str, Any]:
    """log_dict, log_figure, log_input: the artifacts and inputs they leave."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    mlflow.set_experiment("helpers")
    frame = pd.DataFrame({"amount": [1.5, 2.5, 9.0], "label": [0, 0, 1]})
    with mlflow.start_run() as run:
        mlflow.log_dict({"a": 1}, "conf.json")
        figure, axis = plt.subplots()
        axis.plot([0, 1, 2], [2, 1, 3])
        mlflow.log_figure(figure, "plots/curve.png")
        mlflow.log_input(mlflow.data.from_pandas(frame, source="s3://bucket/sample.csv", name="sample"), "training")
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    folder = tempfile.mkdtemp()
    png = client.download_artifacts(run.info.run_id, "plots/curve.png", folder)
    return {
        "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id)),
        "conf": mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/conf.json"),
        "png_magic": open(png, "rb").read(8).hex(),
        "datasets": [(d.dataset.name, d.tags[0].value if d.tags else None) for d in got.inputs.dataset_inputs],
    }


def tables() -> dict[str, Any]:
    """log_table and load_table (MLflow lists the table's folder, which also asks for logged models)."""
    import pandas as pd

    mlflow.set_experiment("tables")
    frame = pd.DataFrame({"amount": [1.5, 2.5, 9.0], "label": [0, 0, 1]})
    with mlflow.start_run() as run:
        mlflow.log_table(frame, "tables/sample.json")
        mlflow.log_table(frame.head(1), "tables/sample.json")  # a second call appends to the same table
    got = MlflowClient().get_run(run.info.run_id)
    table = mlflow.load_table("tables/sample.json", run_ids=[run.info.run_id])
    return {
        "logged_artifacts_tag": json.loads(got.data.tags.get("mlflow.loggedArtifacts", "[]")),
        "table_rows": len(table),
    }


def autolog() -> dict[str, Any]:
    """scikit-learn autologging (models are the registry's part: logged here without them)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(log_models=False, log_datasets=True)
    x, y = load_iris(return_X_y=True)
    with mlflow.start_run() as run:
        LogisticRegression(max_iter=200).fit(x, y)
    got = MlflowClient().get_run(run.info.run_id)
    return {
        "params": sorted(got.data.params)[:5],
        "has_max_iter": got.data.params.get("max_iter"),
        "metrics": sorted(got.data.metrics),
        "estimator_tag": got.data.tags.get("estimator_name"),
        "datasets": len(got.inputs.dataset_inputs),
    }


def credentials() -> dict[str, Any]:
    """Whatever credentials the environment holds (token, or user and password): can they log?"""
    client = MlflowClient()
    try:
        experiment_id = client.create_experiment("credentials")
    except MlflowException as exc:
        return {"error": str(exc.error_code)}
    return {"experiment": client.get_experiment(experiment_id).name}


FLOWS: dict[str, Callable[[], dict[str, Any]]] = {
    "credentials": credentials,
    "quickstart": quickstart,
    "limits": limits,
    "paging": paging,
    "logging_helpers": logging_helpers,
    "tables": tables,
    "autolog": autolog,
}

if __name__ == "__main__":
    result = FLOWS[sys.argv[1]]()
    print("RESULT " + json.dumps(result))
