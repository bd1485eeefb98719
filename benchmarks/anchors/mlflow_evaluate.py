"""Anchor side of benchmarks/gate.py: `mlflow.evaluate` (default evaluator) on the same model and rows.

Run with .venv-anchors/bin/python: `mlflow_evaluate.py MODEL.pkl ROWS.parquet WORKDIR REPS`. Prints one JSON
line: the seconds of each `mlflow.evaluate` call and the metrics of the last one.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
import warnings
from pathlib import Path

import mlflow
import pandas as pd

warnings.filterwarnings("ignore")


def main() -> None:
    model_path, rows_path, workdir, reps = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    # our own file, written by benchmarks/gate.py a moment ago
    model = pickle.loads(model_path.read_bytes())  # noqa: S301
    rows = pd.read_parquet(rows_path)
    features = rows.drop(columns=["income", "sex", "race"])
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment("gate-benchmark")
    seconds, metrics = [], {}
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=features.head(5))
        data = rows.drop(columns=["sex", "race"])
        for _ in range(reps):
            started = time.perf_counter()
            result = mlflow.evaluate(info.model_uri, data, targets="income", model_type="classifier")
            seconds.append(time.perf_counter() - started)
            metrics = {k: float(v) for k, v in result.metrics.items()}
    print(json.dumps({"seconds": seconds, "metrics": metrics, "mlflow": mlflow.__version__}))


if __name__ == "__main__":
    main()
