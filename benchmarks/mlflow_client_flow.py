"""The MLflow client side of benchmarks/mlflow_compat.py: one script, run unchanged against `mlflow server`
and against `loopml server` (MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN say which).

    python benchmarks/mlflow_client_flow.py ingest --runs 100 --steps 100
    python benchmarks/mlflow_client_flow.py batch --reps 10
    python benchmarks/mlflow_client_flow.py search --runs 10000 --reps 20 --warmups 2
    python benchmarks/mlflow_client_flow.py model --reps 5

Each prints one JSON line: its timings. Only the public MLflow client API is used (`mlflow.*`, `MlflowClient`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    SEED,
    expected_search_names,
    summarize,
)


def ingest(runs: int, steps: int) -> dict[str, Any]:
    """The seed's flow: per run, a param and one `log_metric` call per step (what training loops do)."""
    import mlflow

    mlflow.set_experiment(f"ingest-{os.getpid()}")
    rng = random.Random(SEED)
    started = time.perf_counter()
    for index in range(runs):
        with mlflow.start_run(run_name=f"run-{index}"):
            mlflow.log_param("learning_rate", 0.01)
            for step in range(steps):
                mlflow.log_metric("loss", rng.random(), step=step)
    seconds = time.perf_counter() - started
    return {"runs": runs, "steps": steps, "calls": runs * (steps + 1), "seconds": seconds}


def batch(reps: int) -> dict[str, Any]:
    """`MlflowClient.log_batch` with 1,000 metrics (MLflow's per-request maximum), timed per call."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment(f"batch-{os.getpid()}").experiment_id
    run = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    timings = []
    for rep in range(reps):
        metrics = [Metric(f"m{i % 10}", math.sin(i + rep), now, rep * 100 + i // 10) for i in range(1000)]
        started = time.perf_counter()
        client.log_batch(run, metrics=metrics)
        timings.append(time.perf_counter() - started)
    history = client.get_metric_history(run, "m0")
    assert len(history) == reps * 100, f"stored {len(history)} points of m0, expected {reps * 100}"
    return summarize(timings)


def search(runs: int, reps: int, warmups: int) -> dict[str, Any]:
    """`MlflowClient.search_runs` (filter, order by, 100 results) over the populated experiment, per call."""
    import mlflow

    expected = expected_search_names(runs)
    experiment = mlflow.get_experiment_by_name(SEARCH_EXPERIMENT)
    assert experiment is not None, f"no experiment {SEARCH_EXPERIMENT!r}: populate the store first"
    experiment_id = experiment.experiment_id

    def once() -> list[str]:
        found = mlflow.MlflowClient().search_runs(
            [experiment_id], SEARCH_FILTER, order_by=SEARCH_ORDER_BY, max_results=SEARCH_MAX_RESULTS
        )
        return [run.info.run_name for run in found]

    for _ in range(warmups):
        once()
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        names = once()
        timings.append(time.perf_counter() - started)
        assert names == expected, f"search returned {names[:3]}..., expected {expected[:3]}..."
    return summarize(timings)


def model(reps: int) -> dict[str, Any]:
    """`mlflow.sklearn.log_model` with a registered name, an alias, then `pyfunc.load_model` by alias."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(SEED)
    x = rng.random((200, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    name = f"bench-{os.getpid()}"
    mlflow.set_experiment(name)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, input_example=x[:3], pip_requirements=["scikit-learn"]
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", 1)
    log_seconds = time.perf_counter() - started
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        timings.append(time.perf_counter() - started)
        assert (loaded.predict(x[:20]) == model.predict(x[:20])).all()
    return {"log_and_register_seconds": log_seconds, "load": summarize(timings)}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--steps", type=int, default=100)
    p = sub.add_parser("batch")
    p.add_argument("--reps", type=int, default=10)
    p = sub.add_parser("search")
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmups", type=int, default=2)
    p = sub.add_parser("model")
    p.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.command == "ingest":
        result = ingest(args.runs, args.steps)
    elif args.command == "batch":
        result = batch(args.reps)
    elif args.command == "search":
        result = search(args.runs, args.reps, args.warmups)
    else:
        result = model(args.reps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
