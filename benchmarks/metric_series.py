"""Reading one metric's whole history back over HTTP: loopml's binary metric series against loopml's JSON history
route and MLflow's `get_metric_history`, in one run, on the same points.

    .venv/bin/python benchmarks/metric_series.py                    # 1,000,000 points; MLflow at 20,000
    .venv/bin/python benchmarks/metric_series.py --points 100000 --mlflow-points 10000    # a smoke run

Setup (not timed): one run with N points of metric `loss` on each side, from the same seed
(`_common.series_points`): loopml through the embedded SDK into the store the server then opens; MLflow as its
own `metrics` rows (benchmarks/anchors/mlflow_series.py populate). Then each server runs alone with one worker
process, and the client reads the history `--reps` times after one warm-up (median). MLflow reads
`--mlflow-points` points (20,000 by default: its read costs about a millisecond a point on a shared machine);
loopml is timed at that size too, so the ratio at that size is measured, and the one at N is extrapolated from
MLflow's per-point time (its read is linear in the points: ORM rows, then JSON pages of them).

- loopml series: `client.runs.series(run_id, "loss")` -> `GET /api/v1/runs/{id}/metric-series/loss` (binary);
- loopml JSON: `client.runs.history(run_id, "loss")` -> `GET /api/v1/runs/{id}/metrics/loss`;
- MLflow: `MlflowClient.get_metric_history(run_id, "loss")` -> `/api/2.0/mlflow/metrics/get-history` (paged).

Each side's answer is checked: N points, and the same sum of values. Results: a table on stdout and
benchmarks/results/metric_series.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SERIES_KEY, free_port, run_anchor, series_points, server, summarize

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_series.py"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
TOKEN = "bench-admin-token-not-a-secret-0123456789"


def populate_loopml(home: Path, points: int) -> str:
    import loopml as lm

    steps, stamps, values = series_points(points)
    with lm.Client(home=home) as client:
        run = client.runs.create("series", f"bench-{points}")
        log = client.runs.log_metric
        for step, stamp, value in zip(steps, stamps, values, strict=True):
            log(run.id, SERIES_KEY, value, step=step, timestamp=stamp)
        client.runs.end(run.id)
    return run.id


def read_loopml(uri: str, run_id: str, reps: int) -> dict[str, Any]:
    import numpy as np

    import loopml as lm

    out: dict[str, Any] = {}
    with lm.Client(uri, token=TOKEN) as client:
        for name, read in (
            ("series", lambda: client.runs.series(run_id, SERIES_KEY)),
            ("json", lambda: client.runs.history(run_id, SERIES_KEY)),
        ):
            read()  # warm-up: the server's first request opens its connections
            timings = []
            for _ in range(reps):
                started = time.perf_counter()
                found = read()
                timings.append(time.perf_counter() - started)
            checksum = (
                math.fsum(np.asarray(found.values))  # type: ignore[union-attr]
                if name == "series"
                else math.fsum(m.value for m in found)  # type: ignore[union-attr]
            )
            out[name] = {"points": len(found), "checksum": checksum, **summarize(timings)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument(
        "--mlflow-points",
        type=int,
        default=20_000,
        help="MLflow's size (its history read costs ~1 ms a point on a loaded machine: 1,000,000 would take "
        "about 20 minutes a read); loopml is also timed at this size, so that row's ratios are measured",
    )
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    small = min(args.mlflow_points, args.points)
    result: dict[str, Any] = {
        "points": args.points,
        "mlflow_points": small,
        "reps": args.reps,
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-series-") as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        runs = {size: populate_loopml(work / "loopml", size) for size in sorted({small, args.points})}
        print(f"loopml: runs of {sorted(runs)} points logged in {time.perf_counter() - started:.1f} s (not timed)")
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        command = [str(LOOPML), "server", "--host", "127.0.0.1", "--port", str(port)]
        env = {"LOOPML_HOME": str(work / "loopml"), "LOOPML_ADMIN_TOKEN": TOKEN}
        with server("loopml server", command, f"{uri}/api/v1/health", env, work / "loopml.log"):
            result["loopml"] = {str(size): read_loopml(uri, run_id, args.reps) for size, run_id in runs.items()}

        started = time.perf_counter()
        (work / "mlflow-artifacts").mkdir()
        made = run_anchor(
            ANCHOR_PYTHON, ANCHOR_SCRIPT, "populate", "--db", str(work / "mlflow.db"),
            "--artifacts", str(work / "mlflow-artifacts"), "--points", str(small),
        )  # fmt: skip
        print(f"MLflow: {small:,} points written in {time.perf_counter() - started:.1f} s (not timed)")
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        command = [
            str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
            "--default-artifact-root", (work / "mlflow-artifacts").as_uri(),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        with server("mlflow server", command, f"{uri}/health", {}, work / "mlflow.log"):
            result["mlflow"] = run_anchor(
                ANCHOR_PYTHON, ANCHOR_SCRIPT, "history", "--uri", uri, "--run-id", made["run_id"],
                "--reps", str(args.reps),
            )  # fmt: skip

    rows: list[tuple[int, str, dict[str, Any]]] = []
    for size in sorted(runs):
        rows.append((size, "loopml series (binary)", result["loopml"][str(size)]["series"]))
        rows.append((size, "loopml history (JSON)", result["loopml"][str(size)]["json"]))
    rows.append((small, "MLflow get_metric_history", result["mlflow"]))
    for size, name, side in rows:
        expected = math.fsum(series_points(size)[2])
        if side["points"] != size or not math.isclose(side["checksum"], expected, rel_tol=1e-9):
            raise SystemExit(f"{name} read {side['points']} points, checksum {side['checksum']} (want {expected})")
    print(f"\nOne metric's whole history over HTTP, one uvicorn worker each, median of {args.reps}:\n")
    print("| points | reader | median (ms) | p90 (ms) | / loopml series |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for size, name, side in rows:
        base = result["loopml"][str(size)]["series"]["median_ms"]
        ratio = side["median_ms"] / base
        print(f"| {size:,} | {name} | {side['median_ms']:,.1f} | {side['p90_ms']:,.1f} | {ratio:,.1f}x |")
    big = result["loopml"][str(args.points)]
    result["ratio_json_vs_series"] = big["json"]["median_ms"] / big["series"]["median_ms"]
    result["ratio_mlflow_vs_series_same_size"] = (
        result["mlflow"]["median_ms"] / result["loopml"][str(small)]["series"]["median_ms"]
    )
    mlflow_per_point = result["mlflow"]["median_ms"] / small
    result["ratio_mlflow_vs_series_extrapolated"] = mlflow_per_point * args.points / big["series"]["median_ms"]
    print(
        f"\nratio at {args.points:,} points: JSON history / series = {result['ratio_json_vs_series']:.1f}x; "
        f"MLflow / series = {result['ratio_mlflow_vs_series_same_size']:.1f}x at {small:,} points (measured), "
        f"{result['ratio_mlflow_vs_series_extrapolated']:.0f}x at {args.points:,} (MLflow's per-point time "
        f"extrapolated); series at {args.points:,} points: {big['series']['median_ms']:.0f} ms (target <= 200 ms)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metric_series.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
