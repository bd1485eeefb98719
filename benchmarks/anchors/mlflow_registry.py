"""The MLflow side of benchmarks/registry.py, run with `.venv-anchors/bin/python` (MLflow 3.x).

Each subcommand prints one JSON line on stdout (MLflow's own output goes to stderr):

    versions                                    library versions (is the pickled model loadable here?)
    train --csv PATH --out PATH --trees N --depth N   train the same forest here (only if sklearn differs)
    log --uri URI --model PATH --csv PATH --reps N --warmups N
                                                mlflow.sklearn.log_model(..., registered_model_name=...),
                                                timed per call; the last version gets the alias
    overhead --uri URI --csv PATH --number N --repeat N
                                                pyfunc predict vs the raw sklearn predict on one row

The fresh-process load (`mlflow.pyfunc.load_model` + first predict) is a `python -c` child started by
benchmarks/registry.py itself, so both sides' children are the same shape. The servers are started and
stopped by benchmarks/registry.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BIKE_FEATURES, BIKE_TARGET, REGISTRY_ALIAS, REGISTRY_MODEL, SEED, bike_row

SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]
"""skops does not trust the tree node storage by default; MLflow asks the user to name it at log time."""


def versions() -> dict[str, Any]:
    import joblib
    import numpy
    import pandas
    import sklearn

    return {"sklearn": sklearn.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__,
            "joblib": joblib.__version__}  # fmt: skip


def train(csv: Path, out: Path, trees: int, depth: int) -> dict[str, Any]:
    """The same forest as benchmarks/registry.py trains (same data, params and seed), saved with joblib."""
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestRegressor

    frame = pd.read_csv(csv)
    model = RandomForestRegressor(n_estimators=trees, max_depth=depth, random_state=SEED % 2**32, n_jobs=1)
    model.fit(frame[BIKE_FEATURES], frame[BIKE_TARGET])
    joblib.dump(model, out)
    return {"path": str(out), "bytes": out.stat().st_size}


def log(uri: str, model_path: Path, csv: Path, reps: int, warmups: int) -> dict[str, Any]:
    import joblib
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.tracking import MlflowClient

    model = joblib.load(model_path)
    example = pd.read_csv(csv)[BIKE_FEATURES].iloc[:5]
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("registry")
    timings, warmup_timings, versions_logged = [], [], []
    for index in range(warmups + reps):
        with mlflow.start_run():  # run start and end are outside the clock, as on the loopml side
            started = time.perf_counter()
            info = mlflow.sklearn.log_model(
                model,
                name=REGISTRY_MODEL,
                registered_model_name=REGISTRY_MODEL,
                input_example=example,
                skops_trusted_types=SKOPS_TRUSTED,  # MLflow refuses to save a forest without it
            )
            seconds = time.perf_counter() - started
        versions_logged.append(int(info.registered_model_version))
        (timings if index >= warmups else warmup_timings).append(seconds)
    MlflowClient(uri).set_registered_model_alias(REGISTRY_MODEL, REGISTRY_ALIAS, str(versions_logged[-1]))
    return {
        "timings_s": timings,
        "warmup_timings_s": warmup_timings,
        "versions": versions_logged,
        "alias_version": versions_logged[-1],
        "model_uri": info.model_uri,
    }


def overhead(uri: str, csv: str, number: int, repeat: int) -> dict[str, Any]:
    """pyfunc `predict` (schema enforcement, then the sklearn model) minus the sklearn model's own `predict`,
    on a 1-row DataFrame, a 1-row numpy array and one record dict; min over `repeat` of `number` calls."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTRY_MODEL}@{REGISTRY_ALIAS}")
    raw = model.get_raw_model()
    row = bike_row(csv)
    frame = pd.DataFrame([row])
    inputs = {"dataframe": frame, "numpy": frame.to_numpy(), "record": row}
    result: dict[str, Any] = {}
    for kind, data in inputs.items():
        try:
            model.predict(data)
        except Exception as exc:  # MLflow may refuse an input kind: that is the result
            result[kind] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            continue
        # the baseline is the estimator on what it was fitted on (a DataFrame), as MLflow hands it one
        timer_enforced = timeit.Timer(lambda d=data: model.predict(d))
        timer_plain = timeit.Timer(lambda: raw.predict(frame))
        with_checks, without = [], []
        for _ in range(repeat):  # interleaved, so noise hits both alike
            with_checks.append(timer_enforced.timeit(number) / number)
            without.append(timer_plain.timeit(number) / number)
        result[kind] = {
            "predict_us": min(with_checks) * 1e6,
            "raw_us": min(without) * 1e6,
            "overhead_us": (min(with_checks) - min(without)) * 1e6,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("versions")
    t = sub.add_parser("train")
    t.add_argument("--csv", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--trees", type=int, required=True)
    t.add_argument("--depth", type=int, required=True)
    g = sub.add_parser("log")
    g.add_argument("--uri", required=True)
    g.add_argument("--model", type=Path, required=True)
    g.add_argument("--csv", type=Path, required=True)
    g.add_argument("--reps", type=int, required=True)
    g.add_argument("--warmups", type=int, required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--uri", required=True)
    o.add_argument("--csv", required=True)
    o.add_argument("--number", type=int, required=True)
    o.add_argument("--repeat", type=int, required=True)
    args = parser.parse_args()

    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON line
        if args.command == "versions":
            result = versions()
        elif args.command == "train":
            result = train(args.csv, args.out, args.trees, args.depth)
        elif args.command == "log":
            result = log(args.uri, args.model, args.csv, args.reps, args.warmups)
        else:
            result = overhead(args.uri, args.csv, args.number, args.repeat)
        import mlflow

        result["mlflow_version"] = mlflow.__version__
    real_stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
