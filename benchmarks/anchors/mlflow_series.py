"""The MLflow side of benchmarks/metric_series.py, run with `.venv-anchors/bin/python` (MLflow 3.x).

Each subcommand prints one JSON line on stdout (MLflow's own output goes to stderr):

    populate --db PATH --artifacts DIR --points N   one run with N points of metric `loss` (not timed)
    history --uri URI --run-id ID --reps N          MlflowClient.get_metric_history over REST, timed per call
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import SERIES_KEY as KEY
from _common import series_points, summarize


def populate(db: Path, artifacts: Path, points: int) -> dict[str, Any]:
    """A run made through `SqlAlchemyStore`, then its N points written as MLflow's own `metrics` rows (the
    rows `log_batch` writes) in transactions of 50,000: 1,000 `log_batch` requests would only slow the setup."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    store = SqlAlchemyStore(f"sqlite:///{db}", artifacts.as_uri())
    experiment_id = store.create_experiment("series")
    run = store.create_run(experiment_id, "bench", int(time.time() * 1000), [], "series")
    run_id = run.info.run_id
    steps, stamps, values = series_points(points)
    for start in range(0, points, 50_000):
        rows = [
            {"key": KEY, "value": float(v), "timestamp": int(t), "step": int(s), "is_nan": False, "run_uuid": run_id}
            for s, t, v in zip(
                steps[start : start + 50_000],
                stamps[start : start + 50_000],
                values[start : start + 50_000],
                strict=True,
            )
        ]
        with store.ManagedSessionMaker(read_only=False) as session:
            session.execute(insert(SqlMetric), rows)
    with store.ManagedSessionMaker(read_only=False) as session:
        last = points - 1
        session.execute(
            insert(SqlLatestMetric),
            [{"key": KEY, "value": float(values[last]), "timestamp": int(stamps[last]), "step": int(steps[last]),
              "is_nan": False, "run_uuid": run_id}],
        )  # fmt: skip
    store.engine.dispose()
    return {"run_id": run_id, "points": points}


def history(uri: str, run_id: str, reps: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    timings = []
    checksum = 0.0
    count = 0
    for _ in range(reps):
        started = time.perf_counter()
        found = client.get_metric_history(run_id, KEY)
        timings.append(time.perf_counter() - started)
        count = len(found)
        checksum = sum(m.value for m in found)
    return {"points": count, "checksum": checksum, **summarize(timings)}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("populate")
    made.add_argument("--db", type=Path, required=True)
    made.add_argument("--artifacts", type=Path, required=True)
    made.add_argument("--points", type=int, required=True)
    read = commands.add_parser("history")
    read.add_argument("--uri", required=True)
    read.add_argument("--run-id", required=True)
    read.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.command == "populate":
        result = populate(args.db, args.artifacts, args.points)
    else:
        result = history(args.uri, args.run_id, args.reps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
