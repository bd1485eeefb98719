"""The MLflow side of benchmarks/tracking.py, run with `.venv-anchors/bin/python` (MLflow 3.x).

Each subcommand prints one JSON line on stdout (MLflow's own output goes to stderr):

    populate --db PATH --artifacts DIR --runs N [--start S]   grow the search store to N runs (not timed)
    ingest --uri URI --points N --per-call N        log_batch (1000 metrics a call), the history of one key,
                                                    then (if --per-call > 0) single log_metric calls
    search --uri URI --runs N --reps N --warmups N  MlflowClient.search_runs, timed per call

The servers are started and stopped by benchmarks/tracking.py, so both sides run the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    expected_search_names,
    ingest_points,
    search_runs_data,
    summarize,
)

BATCH = 1000
"""MLflow's documented maximum of metrics per log_batch request."""


def populate(db: Path, artifacts: Path, runs: int, start: int) -> dict[str, Any]:
    """Grow the search store from `start` to `runs` runs (not timed in the results).

    The first call makes the experiment through `SqlAlchemyStore`; the runs are then written as MLflow's
    own ORM rows, in transactions of 1,000 runs: the rows `create_run` + `log_batch` + `update_run_info`
    write (a FINISHED run, its `mlflow.runName` tag, its params, one `metrics` and one `latest_metrics` row
    per metric), without one session and three commits per run (100,000 runs that way take over an hour).
    """
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
    from sqlalchemy import event, insert

    store = SqlAlchemyStore(f"sqlite:///{db}", artifacts.as_uri())

    # Population is not timed: skip fsync. The pragma is per connection, so the server, which opens its own
    # connections later, runs with MLflow's own settings.
    @event.listens_for(store.engine, "connect")
    def _no_sync(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    store.engine.dispose()
    started = time.perf_counter()
    experiment = store.get_experiment_by_name(SEARCH_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else store.create_experiment(SEARCH_EXPERIMENT)
    location = store.get_experiment(experiment_id).artifact_location
    now = int(time.time() * 1000)
    rows: dict[Any, list[dict[str, Any]]] = {SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: [], SqlLatestMetric: []}

    def flush() -> None:
        with store.ManagedSessionMaker(read_only=False) as session:
            for model, batch in rows.items():
                if batch:
                    session.execute(insert(model), batch)
                batch.clear()

    for index, (name, params, metrics) in enumerate(search_runs_data(runs, start=start), start=start):
        run_id = uuid.uuid4().hex
        rows[SqlRun].append(
            {
                "run_uuid": run_id, "name": name, "source_type": SourceType.to_string(SourceType.UNKNOWN),
                "source_name": "", "entry_point_name": "", "user_id": "bench",
                "status": RunStatus.to_string(RunStatus.FINISHED), "start_time": now + index,
                "end_time": now + index, "deleted_time": None, "source_version": "",
                "lifecycle_stage": LifecycleStage.ACTIVE, "artifact_uri": f"{location}/{run_id}/artifacts",
                "experiment_id": int(experiment_id),
            }
        )  # fmt: skip
        rows[SqlTag].append({"key": MLFLOW_RUN_NAME, "value": name, "run_uuid": run_id})
        rows[SqlParam].extend({"key": k, "value": v, "run_uuid": run_id} for k, v in params.items())
        for model in (SqlMetric, SqlLatestMetric):
            rows[model].extend(
                {"key": k, "value": v, "timestamp": now, "step": 0, "is_nan": False, "run_uuid": run_id}
                for k, v in metrics.items()
            )
        if len(rows[SqlRun]) == 1000:
            flush()
    flush()
    store.engine.dispose()
    return {"runs": runs, "added": runs - start, "seconds": time.perf_counter() - started}


def ingest(uri: str, points: int, per_call: int) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    data = ingest_points(points)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ingest-batched")  # one experiment for every size
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("ingest-batched")
    run_id = client.create_run(experiment_id).info.run_id
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        at = int(time.time() * 1000)
        batch = [Metric(key, value, at, step) for key, value, step in data[start : start + BATCH]]
        client.log_batch(run_id, metrics=batch)
    batched_seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    history_timings = []
    for _ in range(3):  # the history of one key (points / 10 of them), as a user reads it back
        started = time.perf_counter()
        history = client.get_metric_history(run_id, "k0")
        history_timings.append(time.perf_counter() - started)
    stored = len(history) * 10 if points % 10 == 0 else None
    result: dict[str, Any] = {
        "batched": {
            "points": points,
            "requests": -(-points // BATCH),
            "seconds": batched_seconds,
            "points_per_s": points / batched_seconds,
            "stored": stored,
        },
        "history": {"points": len(history), **summarize(history_timings)},
    }
    if not per_call:
        return result

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("ingest-per-call")
    with mlflow.start_run():
        for key, value, step in data[:5]:  # warm the connection pool: steady-state cost only
            mlflow.log_metric(key, value, step=step)
        started = time.perf_counter()
        for key, value, step in data[:per_call]:
            mlflow.log_metric(key, value, step=step + 1_000_000)
        per_call_seconds = time.perf_counter() - started
    result["per_call"] = {"calls": per_call, "seconds": per_call_seconds, "points_per_s": per_call / per_call_seconds}
    return result


def search(uri: str, runs: int, reps: int, warmups: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(SEARCH_EXPERIMENT)
    if experiment is None:
        raise SystemExit(f"experiment {SEARCH_EXPERIMENT!r} is missing: run populate first")
    ids = [experiment.experiment_id]

    def once() -> list[Any]:
        return list(
            client.search_runs(
                ids, filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER_BY, max_results=SEARCH_MAX_RESULTS
            )
        )

    for _ in range(warmups):
        found = once()
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        found = once()
        timings.append(time.perf_counter() - started)
    names = [run.info.run_name for run in found]
    return {
        "timings_s": timings,
        **summarize(timings),
        "returned": len(found),
        "correct": names == expected_search_names(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--start", type=int, default=0, help="runs already in the store (grow it from there)")
    i = sub.add_parser("ingest")
    i.add_argument("--uri", required=True)
    i.add_argument("--points", type=int, required=True)
    i.add_argument("--per-call", type=int, required=True)
    s = sub.add_parser("search")
    s.add_argument("--uri", required=True)
    s.add_argument("--runs", type=int, required=True)
    s.add_argument("--reps", type=int, required=True)
    s.add_argument("--warmups", type=int, required=True)
    args = parser.parse_args()

    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON line
        import mlflow

        if args.command == "populate":
            result = populate(args.db.resolve(), args.artifacts.resolve(), args.runs, args.start)
        elif args.command == "ingest":
            result = ingest(args.uri, args.points, args.per_call)
        else:
            result = search(args.uri, args.runs, args.reps, args.warmups)
        result["mlflow_version"] = mlflow.__version__
    real_stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
