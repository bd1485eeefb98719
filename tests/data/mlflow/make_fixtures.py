"""Write the MLflow model fixtures of tests/registry/test_mlflow_import.py with the real `mlflow` package.

Run from the repository root, in the anchors virtualenv (mlflow is not a loopml dependency):

    .venv-anchors/bin/pip install xgboost-cpu lightgbm
    .venv-anchors/bin/python tests/data/mlflow/make_fixtures.py

It trains tiny models on the first 300 rows of examples/data/bike_sharing/hour.csv, saves each with the
matching `mlflow.<flavor>.save_model` (signature and input example included) under tests/data/mlflow/<name>/,
and writes expected.json: 20 fixed rows and every model's predictions on them. Not collected by pytest (the
name does not start with `test_`).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.tree import DecisionTreeRegressor

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["temp", "atemp", "hum", "windspeed", "hr"]
TARGET = "cnt"
FIXTURES = (
    "sklearn_skops",
    "sklearn_cloudpickle",
    "xgboost_regressor",
    "lightgbm_booster",
    "lightgbm_regressor",
    "lightgbm_regressor_cloudpickle",
)


def main() -> None:
    warnings.simplefilter("ignore", UserWarning)  # mlflow's hint that integer columns cannot hold missing values
    frame = pd.read_csv(DATA, nrows=300)
    x, y = frame[FEATURES], frame[TARGET].astype("float64")
    rows = frame.iloc[300 - 20 :][FEATURES].reset_index(drop=True)  # the last 20 training rows, fixed
    example = x.head(3)
    for name in FIXTURES:
        shutil.rmtree(HERE / name, ignore_errors=True)

    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(x, y)
    tree_signature = infer_signature(example, tree.predict(example))
    mlflow.sklearn.save_model(  # MLflow 3's default serialization (skops); a tree needs its type trusted
        tree,
        HERE / "sklearn_skops",
        signature=tree_signature,
        input_example=example,
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    mlflow.sklearn.save_model(
        tree,
        HERE / "sklearn_cloudpickle",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=tree_signature,
        input_example=example,
    )

    booster_params = {"max_depth": 3, "n_estimators": 8, "learning_rate": 0.3, "random_state": 0, "n_jobs": 1}
    xgb_model = xgb.XGBRegressor(**booster_params).fit(x, y)
    mlflow.xgboost.save_model(
        xgb_model,
        HERE / "xgboost_regressor",
        signature=infer_signature(example, xgb_model.predict(example)),
        input_example=example,
    )

    lgb_params = {"objective": "regression", "num_leaves": 7, "learning_rate": 0.3, "verbose": -1, "seed": 0}
    booster = lgb.train({**lgb_params, "num_threads": 1}, lgb.Dataset(x, y), num_boost_round=8)
    mlflow.lightgbm.save_model(
        booster,
        HERE / "lightgbm_booster",
        signature=infer_signature(example, booster.predict(example)),
        input_example=example,
    )
    regressor = lgb.LGBMRegressor(n_estimators=8, num_leaves=7, learning_rate=0.3, verbose=-1, random_state=0)
    regressor.fit(x, y)
    mlflow.lightgbm.save_model(
        regressor,
        HERE / "lightgbm_regressor",
        signature=infer_signature(example, regressor.predict(example)),
        input_example=example,
    )
    mlflow.lightgbm.save_model(
        regressor,
        HERE / "lightgbm_regressor_cloudpickle",
        serialization_format="cloudpickle",
        signature=infer_signature(example, regressor.predict(example)),
        input_example=example,
    )

    predictions = {
        "sklearn_skops": tree.predict(rows),
        "sklearn_cloudpickle": tree.predict(rows),
        "xgboost_regressor": xgb_model.predict(rows),
        "lightgbm_booster": booster.predict(rows),
        "lightgbm_regressor": regressor.predict(rows),
        "lightgbm_regressor_cloudpickle": regressor.predict(rows),
    }
    expected = {
        "mlflow_version": mlflow.__version__,
        "features": FEATURES,
        "rows": json.loads(rows.to_json(orient="records")),
        "predictions": {name: np.asarray(values, dtype="float64").tolist() for name, values in predictions.items()},
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name in FIXTURES:
        size = sum(p.stat().st_size for p in (HERE / name).rglob("*") if p.is_file())
        print(f"{name}: {size} bytes: {sorted(p.name for p in (HERE / name).iterdir())}")


if __name__ == "__main__":
    main()
