"""Batch scoring benchmark (issue 4): `loopml predict` against `mlflow models predict`, same model, same file.

    .venv/bin/python benchmarks/batch.py              # 1,000,000 rows, 3 runs of each command
    .venv/bin/python benchmarks/batch.py --quick      # 100,000 rows, 1 run each

Each side trains the same HistGradientBoostingRegressor (Bike Sharing hour.csv, the same features and seed) in
its own environment and saves it its own way: loopml with `loopml.registry.save_model`, MLflow with
`mlflow.sklearn.save_model` in `.venv-anchors`. The input is hour.csv repeated to N rows (feature columns
only), written once as CSV (both sides) and as Parquet (loopml only). The time is the wall time of the whole
command, process start to exit, as a user would see it:

    loopml predict MODEL_DIR in.csv out.parquet
    loopml predict MODEL_DIR in.parquet out.parquet
    mlflow models predict -m MODEL_DIR -i in.csv -o out.json -t csv --env-manager local

Both outputs are read back and compared with each other. Results: a table on stdout and
benchmarks/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import BIKE_CSV, BIKE_FEATURES, BIKE_TARGET, SEED

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CSV = REPO / BIKE_CSV
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_batch.py"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
TARGET_RATIO = 3.0


def build_inputs(rows: int, directory: Path) -> tuple[Path, Path, Path]:
    import pandas as pd

    hours = pd.read_csv(CSV)[BIKE_FEATURES]
    repeats = -(-rows // len(hours))
    frame = pd.concat([hours] * repeats, ignore_index=True).iloc[:rows]
    csv, parquet, one = directory / "in.csv", directory / "in.parquet", directory / "one.csv"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    frame.iloc[:1].to_csv(one, index=False)
    return csv, parquet, one


def save_loopml_model(directory: Path) -> Path:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from loopml.registry import save_model

    frame = pd.read_csv(CSV)
    features = frame[BIKE_FEATURES]
    model = HistGradientBoostingRegressor(random_state=SEED % 2**32).fit(features, frame[BIKE_TARGET])
    save_model(model, directory, input_example=features.iloc[:5])
    return directory


def save_mlflow_model(directory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "save", "--csv", str(CSV), "--out", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the MLflow side failed to save its model:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall time of one run of `command`, start to exit; fails loudly if the command fails."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def mlflow_predictions(path: Path) -> list[float]:
    text = path.read_text()
    document = json.loads(text)
    values = document["predictions"] if isinstance(document, dict) else document
    return [float(v) for v in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one run of each command")
    args = parser.parse_args()
    rows, repeats = (100_000, 1) if args.quick else (args.rows, args.repeats)
    for tool in (ANCHOR_PYTHON, MLFLOW, LOOPML):
        if not tool.exists():
            sys.exit(f"{tool} is missing: run `make install` and `make anchors` first")

    import numpy as np
    import pyarrow.parquet as pq

    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="loopml-bench-batch-") as scratch:
        root = Path(scratch)
        home = root / "home"
        home.mkdir()
        env = {**os.environ, "LOOPML_HOME": str(home), "MLFLOW_TRACKING_URI": f"file://{root / 'mlruns'}"}
        print(f"building {rows:,} input rows (CSV and Parquet) and both models ...", flush=True)
        csv, parquet, one = build_inputs(rows, root)
        loopml_model = save_loopml_model(root / "loopml-model")
        anchor = save_mlflow_model(root / "mlflow-model")

        commands = {
            "loopml_csv": [str(LOOPML), "predict", str(loopml_model), str(csv), str(root / "loopml-csv.parquet")],
            "loopml_parquet": [str(LOOPML), "predict", str(loopml_model), str(parquet), str(root / "out.parquet")],
            "mlflow_csv": [
                str(MLFLOW), "models", "predict", "-m", str(root / "mlflow-model"), "-i", str(csv),
                "-o", str(root / "mlflow.json"), "-t", "csv", "--env-manager", "local",
            ],
            # the same commands on a 1-row file: the fixed cost (start, imports, model load) of each side
            "loopml_startup": [str(LOOPML), "predict", str(loopml_model), str(one), str(root / "one.parquet")],
            "mlflow_startup": [
                str(MLFLOW), "models", "predict", "-m", str(root / "mlflow-model"), "-i", str(one),
                "-o", str(root / "one.json"), "-t", "csv", "--env-manager", "local",
            ],
        }  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for attempt in range(repeats):  # interleaved, so load on the shared machine hits every side alike
            for name, command in commands.items():
                seconds[name].append(timed(command, env, root))
                print(f"  run {attempt + 1}/{repeats} {name}: {seconds[name][-1]:.2f} s", flush=True)

        ours = pq.read_table(root / "loopml-csv.parquet", columns=["prediction"]).column(0).to_numpy()
        ours_parquet = pq.read_table(root / "out.parquet", columns=["prediction"]).column(0).to_numpy()
        theirs = np.asarray(mlflow_predictions(root / "mlflow.json"))
        checks = {
            "rows": {"loopml_csv": len(ours), "loopml_parquet": len(ours_parquet), "mlflow_csv": len(theirs)},
            "csv_equals_parquet": bool(np.array_equal(ours, ours_parquet)),
            "max_abs_difference_vs_mlflow": float(np.max(np.abs(ours - theirs))) if len(ours) == len(theirs) else None,
        }
        sizes = {"csv_bytes": csv.stat().st_size, "parquet_bytes": parquet.stat().st_size}
        shutil.rmtree(home, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratio_csv = median["mlflow_csv"] / median["loopml_csv"]
    ratio_parquet = median["mlflow_csv"] / median["loopml_parquet"]
    marginal_loopml = median["loopml_csv"] - median["loopml_startup"]
    marginal_mlflow = median["mlflow_csv"] - median["mlflow_startup"]
    table = [
        (f"{rows:,} rows, CSV in: whole command", median["loopml_csv"], median["mlflow_csv"], ratio_csv, True),
        (f"{rows:,} rows, Parquet in (loopml) vs CSV in (MLflow)", median["loopml_parquet"], median["mlflow_csv"],
         ratio_parquet, True),
        ("1 row, CSV in: start-up, imports, model load", median["loopml_startup"], median["mlflow_startup"],
         median["mlflow_startup"] / median["loopml_startup"], False),
        (f"{rows:,} rows, CSV in, minus the 1-row run", marginal_loopml, marginal_mlflow,
         marginal_mlflow / marginal_loopml if marginal_loopml > 0 else float("nan"), False),
    ]  # fmt: skip
    print()
    print(f"| scenario (wall time of the command, median of {repeats}) | loopml (s) | MLflow (s) | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, loopml_s, mlflow_s, ratio, targeted in table:
        verdict = (f">= {TARGET_RATIO:.0f}x: " + ("pass" if ratio >= TARGET_RATIO else "FAIL")) if targeted else "-"
        print(f"| {label} | {loopml_s:.2f} | {mlflow_s:.2f} | {ratio:.1f}x | {verdict} |")
    print()
    print(f"rows written: {checks['rows']}; loopml CSV == Parquet predictions: {checks['csv_equals_parquet']}; ")
    print(f"max |loopml - MLflow| prediction: {checks['max_abs_difference_vs_mlflow']}")

    import numpy
    import pandas
    import pyarrow
    import sklearn

    import loopml

    report = {
        "rows": rows,
        "repeats": repeats,
        "seconds": seconds,
        "median_seconds": median,
        "ratio_vs_mlflow": {"loopml_csv": ratio_csv, "loopml_parquet": ratio_parquet},
        "target_ratio": TARGET_RATIO,
        "checks": checks,
        "input": sizes,
        "versions": {
            "loopml": loopml.__version__,
            "sklearn": sklearn.__version__,
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "pyarrow": pyarrow.__version__,
            "anchor": anchor,
        },
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    (RESULTS / "batch.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'batch.json'}")


if __name__ == "__main__":
    main()
