"""MLflow store import benchmark (issue 13): `loopml import-mlflow` on a store of 10,000 runs x 10 metrics x
100 steps (10 million points), target at least 50,000 metric points per second end to end.

    .venv/bin/python benchmarks/mlflow_import.py            # full run: 10,000 runs (populating takes minutes)
    .venv/bin/python benchmarks/mlflow_import.py --quick    # 1,000 runs

1. Populate (not timed): benchmarks/anchors/mlflow_store.py in `.venv-anchors` lets MLflow create its schema
   and the experiment, then fills MLflow's tables (runs, 10 params and 2 tags per run, metric history,
   latest metrics) with SQL, as MLflow's store writes them.
2. Import (timed): the `loopml import-mlflow --from sqlite:///... ` command as a user runs it, in a fresh
   process on a fresh LOOPML_HOME (SQLite), wall time from start to exit, interpreter start-up included.
3. Check: the loopml store holds every run and every point (counted in SQL), and a second import adds none.

There is no anchor to race here (MLflow has no import from another store); the figure is points per second.
Results: a table on stdout and benchmarks/results/mlflow_import.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from _common import run_anchor

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_store.py"
LOOPML = Path(sys.executable).parent / "loopml"
TARGET_POINTS_PER_S = 50_000.0


def _import(database: Path, home: Path) -> tuple[float, str]:
    env = {**os.environ, "LOOPML_HOME": str(home), "OMP_NUM_THREADS": "1"}
    for name in ("LOOPML_TRACKING_URI", "LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT"):
        env.pop(name, None)
    started = time.perf_counter()
    done = subprocess.run(  # our own command on paths we made
        [str(LOOPML), "import-mlflow", "--from", f"sqlite:///{database}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loopml import-mlflow failed ({done.returncode}): {done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout.strip()


def _count(home: Path) -> tuple[int, int]:
    with sqlite3.connect(home / "loopml.db") as db:
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        points = db.execute("SELECT coalesce(sum(count), 0) FROM metric_chunks").fetchone()[0]
    return int(runs), int(points)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="1,000 runs")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/results/tmp/mlflow_import")
    args = parser.parse_args()
    runs = 1_000 if args.quick else args.runs
    work = RESULTS / "tmp" / "mlflow_import"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        database = work / "mlflow.db"
        populated = run_anchor(ANCHOR_PYTHON, ANCHOR_SCRIPT, str(database), str(runs), str(args.keys), str(args.steps))
        points = int(populated["points"])
        print(f"populated {runs:,} runs, {points:,} points in {populated['seconds']:.1f} s (not timed)", flush=True)
        home = work / "loopml"
        seconds, summary = _import(database, home)
        stored_runs, stored_points = _count(home)
        again_seconds, again = _import(database, home)
        after_runs, after_points = _count(home)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ok = (stored_runs, stored_points) == (runs, points) == (after_runs, after_points)
    rate = points / seconds
    result = {
        "runs": runs,
        "points": points,
        "import_seconds": seconds,
        "points_per_s": rate,
        "second_import_seconds": again_seconds,
        "summary": summary,
        "second_summary": again,
        "stored": [stored_runs, stored_points],
        "after_second_import": [after_runs, after_points],
        "correct": ok,
        "target_points_per_s": TARGET_POINTS_PER_S,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mlflow_import.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "pass" if rate >= TARGET_POINTS_PER_S else "FAIL"
    print("| scenario | loopml | target | result |")
    print("| --- | ---: | --- | --- |")
    print(
        f"| import-mlflow {runs:,} runs x {args.keys} metrics x {args.steps} steps "
        f"({points:,} points), end to end | {rate:,.0f} points/s ({seconds:.1f} s) "
        f"| >= {TARGET_POINTS_PER_S:,.0f}/s | {verdict} |"
    )
    print(f"| second import of the same store (everything skipped) | {again_seconds:.1f} s | - | - |")
    print(f"correct: {ok} (runs {stored_runs:,}/{runs:,}, points {stored_points:,}/{points:,}; unchanged after rerun)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
