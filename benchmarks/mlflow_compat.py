"""MLflow compatibility benchmark (issue 13): the same MLflow client code against `loopml server` and against
`mlflow server`, side by side in one run (SQLite, one worker each), and the ratio.

    .venv/bin/python benchmarks/mlflow_compat.py            # 100 runs x 100 steps, search over 10,000 runs
    .venv/bin/python benchmarks/mlflow_compat.py --quick    # 10 runs x 100 steps, 2,000 runs, fewer reps

The client is benchmarks/mlflow_client_flow.py, run with the same interpreter and the same MLflow client
(mlflow-skinny, the dev extra) against both servers, one scenario at a time, loopml first then MLflow:

1. ingest: runs x steps, `mlflow.start_run`, a param and one `mlflow.log_metric` per step (the seed's flow);
2. log_batch: `MlflowClient.log_batch` with 1,000 metrics, timed per call;
3. search: `MlflowClient.search_runs` with a filter and an order by, 100 results, over the populated
   experiment (both stores hold the same runs: MLflow's is written by benchmarks/anchors/mlflow_store.py, and
   loopml's is that very store brought in with `loopml import-mlflow` before the server starts; not timed);
4. model: `mlflow.sklearn.log_model(registered_model_name=...)` + an alias (timed once), then
   `mlflow.pyfunc.load_model("models:/name@champion")`, timed per call.

Targets: at least 3x faster end to end for ingest and search, no slower for the rest. Results: a table on
stdout and benchmarks/results/mlflow_compat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import free_port, run_anchor, server

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
CLIENT = HERE / "mlflow_client_flow.py"
TOKEN = "bench-admin-token-not-a-secret-0123456789"


def client(uri: str, token: str | None, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPML_"))}
    env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", OMP_NUM_THREADS="1")
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    done = subprocess.run([sys.executable, str(CLIENT), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the MLflow client failed against {uri} ({args[0]}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="ingest runs")
    parser.add_argument("--steps", type=int, default=100, help="log_metric steps per ingest run")
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=20, help="timed searches (and 10 log_batch, 5 loads)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/results/tmp/mlflow_compat")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.search_runs, args.reps = 10, 2_000, 5
    work = RESULTS / "tmp" / "mlflow_compat"
    shutil.rmtree(work, ignore_errors=True)
    (work / "mlflow").mkdir(parents=True)
    try:
        results = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("ingest: {runs} runs x {steps} log_metric (s)", "ingest", lambda r: r["seconds"], 3.0),
        ("log_batch of 1,000 metrics (median ms)", "batch", lambda r: r["median_ms"], 1.0),
        ("search_runs over {search_runs:,} runs, top 100 (median ms)", "search", lambda r: r["median_ms"], 3.0),
        ("sklearn log_model + register + alias (s)", "model", lambda r: r["log_and_register_seconds"], 1.0),
        ("pyfunc.load_model by alias (median ms)", "model", lambda r: r["load"]["median_ms"], 1.0),
    ]
    table = ["| scenario | loopml | MLflow | ratio | target | result |", "| --- | ---: | ---: | ---: | --- | --- |"]
    ok = True
    for label, key, value, target in rows:
        ours, theirs = value(results["loopml"][key]), value(results["mlflow"][key])
        ratio = theirs / ours
        passed = ratio >= target
        ok = ok and passed
        table.append(
            f"| {label.format(**vars(args))} | {ours:,.1f} | {theirs:,.1f} | {ratio:.1f}x | >= {target:g}x "
            f"| {'pass' if passed else 'FAIL'} |"
        )
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()}
    results["args"] = vars(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mlflow_compat.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(table))
    return 0


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    database = work / "mlflow" / "mlflow.db"
    populated = run_anchor(
        ANCHOR_PYTHON, HERE / "anchors" / "mlflow_store.py", str(database), str(args.search_runs), "search"
    )
    print(f"populated {populated['runs']:,} search runs in {populated['seconds']:.1f} s (not timed)", flush=True)
    home = work / "loopml"
    copy = work / "copy.db"
    shutil.copy(database, copy)  # the import reads a copy: the MLflow server owns its file
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    subprocess.run(
        [str(LOOPML), "import-mlflow", "--from", f"sqlite:///{copy}"],
        env={**env, "LOOPML_HOME": str(home)},
        check=True,
        capture_output=True,
    )
    loopml_port, mlflow_port = free_port(), free_port()
    loopml_uri, mlflow_uri = f"http://127.0.0.1:{loopml_port}", f"http://127.0.0.1:{mlflow_port}"
    loopml_cmd = [str(LOOPML), "server", "--port", str(loopml_port)]
    mlflow_cmd = [
        str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{database}",
        "--artifacts-destination", str(work / "mlflow" / "artifacts"),
        "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
    ]  # fmt: skip
    results: dict[str, dict[str, Any]] = {"loopml": {}, "mlflow": {}}
    loopml_env = {"LOOPML_HOME": str(home), "LOOPML_ADMIN_TOKEN": TOKEN}
    with (
        server("loopml", loopml_cmd, f"{loopml_uri}/api/v1/health", loopml_env, work / "loopml.log"),
        server("mlflow", mlflow_cmd, f"{mlflow_uri}/health", {}, work / "mlflow.log"),
    ):
        scenarios = {
            "ingest": ["ingest", "--runs", str(args.runs), "--steps", str(args.steps)],
            "batch": ["batch", "--reps", "10"],
            "search": ["search", "--runs", str(args.search_runs), "--reps", str(args.reps), "--warmups", "2"],
            "model": ["model", "--reps", "5"],
        }
        for key, command in scenarios.items():
            results["loopml"][key] = client(loopml_uri, TOKEN, *command)
            results["mlflow"][key] = client(mlflow_uri, None, *command)
            print(f"{key}: loopml {results['loopml'][key]}\n{key}: mlflow {results['mlflow'][key]}", flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
