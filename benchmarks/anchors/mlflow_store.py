"""Anchor side of benchmarks/mlflow_import.py: write an MLflow tracking store to import (run in .venv-anchors).

    .venv-anchors/bin/python benchmarks/anchors/mlflow_store.py DB RUNS KEYS STEPS
    .venv-anchors/bin/python benchmarks/anchors/mlflow_store.py DB RUNS search

The second form writes the search scenario of `_common.search_runs_data` (experiment `search`, 10 params and
10 metrics per run) for benchmarks/mlflow_compat.py.

MLflow creates the schema (`SqlAlchemyStore`: every migration of mlflow 3.x) and the experiment; the runs,
params, tags, metric histories and latest values are then inserted with SQL into MLflow's own tables,
rows as MLflow writes them, because logging 10 million points through MLflow's API would take hours.
Prints one JSON line: what was written and how long it took.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
import uuid
from pathlib import Path

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import SEARCH_EXPERIMENT, SEED, search_runs_data


def search(db: Path, runs: int) -> None:
    started = time.perf_counter()
    store = SqlAlchemyStore(f"sqlite:///{db}", str(db.parent / "mlartifacts"))
    experiment_id = int(store.create_experiment(SEARCH_EXPERIMENT))
    store.engine.dispose()
    rng = random.Random(SEED)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    now = 1_790_000_000_000
    for index, (name, params, metrics) in enumerate(search_runs_data(runs)):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        conn.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (
                run_id,
                name,
                now + index,
                now + index + 1,
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                experiment_id,
            ),
        )
        conn.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", [(k, v, run_id) for k, v in params.items()]
        )
        conn.execute("INSERT INTO tags (key, value, run_uuid) VALUES ('mlflow.runName', ?, ?)", (name, run_id))
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, 0, 0)",
            [(k, v, now, run_id) for k, v in metrics.items()],
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, 0, 0, ?)",
            [(k, v, now, run_id) for k, v in metrics.items()],
        )
    conn.commit()
    conn.close()
    print(json.dumps({"runs": runs, "experiment_id": str(experiment_id), "seconds": time.perf_counter() - started}))


def main() -> None:
    if sys.argv[3] == "search":
        search(Path(sys.argv[1]), int(sys.argv[2]))
        return
    db, runs, keys, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    started = time.perf_counter()
    store = SqlAlchemyStore(f"sqlite:///{db}", str(db.parent / "mlartifacts"))
    experiment_id = store.create_experiment("imported")
    store.engine.dispose()
    rng = random.Random(20261205)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=MEMORY")
    base = 1_790_000_000_000
    points = 0
    for i in range(runs):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        start = base + i * 60_000
        conn.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (
                run_id,
                f"run-{i:05d}",
                start,
                start + 50_000,
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                int(experiment_id),
            ),
        )
        conn.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
            [(f"p{k}", "abcd"[rng.randrange(4)], run_id) for k in range(10)],
        )
        conn.executemany(
            "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
            [("mlflow.runName", f"run-{i:05d}", run_id), ("mlflow.user", "bench", run_id)],
        )
        rows = [
            (f"m{k}", rng.random(), start + step * 100 + k, run_id, step, 0)
            for k in range(keys)
            for step in range(steps)
        ]
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
        latest = {r[0]: r for r in rows}
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
            [(k, v, t, s, n, r) for k, v, t, r, s, n in latest.values()],
        )
        points += len(rows)
        if i % 500 == 499:
            conn.commit()
    conn.commit()
    conn.close()
    print(json.dumps({"runs": runs, "points": points, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
