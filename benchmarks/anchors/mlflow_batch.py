"""The MLflow side of benchmarks/batch.py, run with `.venv-anchors/bin/python` (MLflow 3.x).

    save --csv PATH --out DIR    train the benchmark's HistGradientBoostingRegressor here (same data, same seed)
                                 and save it with `mlflow.sklearn.save_model` (signature inferred)

Prints one JSON line on stdout: library versions and the model directory. The timed command,
`mlflow models predict ... --env-manager local`, is started by benchmarks/batch.py itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BIKE_FEATURES, BIKE_TARGET, SEED

SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
"""skops does not trust the histogram trees' node arrays by default; MLflow asks the user to name the type."""


def save(csv: str, out: str) -> dict[str, str]:
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = pd.read_csv(csv)
    features, target = frame[BIKE_FEATURES], frame[BIKE_TARGET]
    model = HistGradientBoostingRegressor(random_state=SEED % 2**32).fit(features, target)
    signature = infer_signature(features.iloc[:100], model.predict(features.iloc[:100]))
    mlflow.sklearn.save_model(
        model, out, signature=signature, input_example=features.iloc[:5], skops_trusted_types=SKOPS_TRUSTED
    )
    return {"mlflow": mlflow.__version__, "sklearn": sklearn.__version__, "pandas": pd.__version__, "model": out}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save")
    saving.add_argument("--csv", required=True)
    saving.add_argument("--out", required=True)
    args = parser.parse_args()
    print(json.dumps(save(args.csv, args.out)))


if __name__ == "__main__":
    main()
