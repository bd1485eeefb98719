"""Quickstart: track real models on the Bike Sharing data, find the best run by search, register its model,
make it the champion, load it by alias and score later months.

    .venv/bin/python examples/quickstart/quickstart.py     # alone; `make demo` runs it through loopml server

Runs on the embedded store (./loopml-data, or LOOPML_HOME); set LOOPML_TRACKING_URI and LOOPML_TOKEN to
send the same runs to a `loopml server` instead.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

import loopml as lm

DATA = Path(__file__).resolve().parents[1] / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
TARGET = "cnt"
EXPERIMENT = "bike-demand"
MODEL = "bike-demand"


def load() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train on January-September 2011, validate on October-December 2011; 2012 stays unseen until the end."""
    hours = pd.read_csv(DATA, parse_dates=["dteday"])
    year_2011 = hours[hours["dteday"].dt.year == 2011]
    train = year_2011[year_2011["dteday"].dt.month <= 9]
    valid = year_2011[year_2011["dteday"].dt.month > 9]
    return train, valid, hours[hours["dteday"].dt.year == 2012]


def scores(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def log_importance(run: lm.ActiveRun, model: object, valid: pd.DataFrame) -> None:
    result = permutation_importance(model, valid[FEATURES], valid[TARGET], n_repeats=3, random_state=0)
    table = pd.DataFrame({"feature": FEATURES, "importance": result.importances_mean})
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "feature_importance.csv"
        table.sort_values("importance", ascending=False).to_csv(path, index=False)
        run.log_artifact(path)


def train_boosting(train: pd.DataFrame, valid: pd.DataFrame, max_depth: int) -> None:
    params = {"model": "hist_gradient_boosting", "max_depth": max_depth, "learning_rate": 0.1}
    with lm.start_run(experiment=EXPERIMENT, name=f"hgb-depth{max_depth}", params=params) as run:
        run.log_dataset(train, name="hour-2011-jan-sep", role="training", source=str(DATA))
        run.log_dataset(valid, name="hour-2011-oct-dec", role="validation", source=str(DATA))
        model = HistGradientBoostingRegressor(max_depth=max_depth, learning_rate=0.1, max_iter=25, warm_start=True)
        for step, iterations in enumerate(range(25, 201, 25)):
            model.set_params(max_iter=iterations)
            model.fit(train[FEATURES], train[TARGET])
            run.log_metric("rmse", scores(valid[TARGET], model.predict(valid[FEATURES]))["rmse"], step=step)
        final = scores(valid[TARGET], model.predict(valid[FEATURES]))
        run.log_metrics(final, step=step)
        log_importance(run, model, valid)
        run.log_model(model, name=MODEL, input_example=train[FEATURES][:5])


def train_forest(train: pd.DataFrame, valid: pd.DataFrame) -> None:
    params = {"model": "random_forest", "max_depth": 12, "n_estimators": 100}
    with lm.start_run(experiment=EXPERIMENT, name="forest", params=params) as run:
        run.log_dataset(train, name="hour-2011-jan-sep", role="training", source=str(DATA))
        model = RandomForestRegressor(n_estimators=100, max_depth=12, n_jobs=2, random_state=0)
        model.fit(train[FEATURES], train[TARGET])
        run.log_metrics(scores(valid[TARGET], model.predict(valid[FEATURES])))
        run.log_model(model, name=MODEL, input_example=train[FEATURES][:5])


def train_ridge(train: pd.DataFrame, valid: pd.DataFrame) -> None:
    with lm.start_run(experiment=EXPERIMENT, name="ridge", params={"model": "ridge", "alpha": 1.0}) as run:
        run.log_dataset(train, name="hour-2011-jan-sep", role="training", source=str(DATA))
        model = Ridge(alpha=1.0).fit(train[FEATURES], train[TARGET])
        run.log_metrics(scores(valid[TARGET], model.predict(valid[FEATURES])))
        run.log_model(model, name=MODEL, input_example=train[FEATURES][:5])


def main() -> int:
    train, valid, later = load()
    print("Bike Sharing data: Fanaee-T & Gama (2013), UCI Machine Learning Repository, CC BY 4.0")
    print(f"{len(train)} training hours (Jan-Sep 2011), {len(valid)} validation hours (Oct-Dec 2011)")
    train_ridge(train, valid)
    train_forest(train, valid)
    for depth in (4, 8):
        train_boosting(train, valid, depth)

    best = lm.search_runs(EXPERIMENT, filter="metrics.r2 > 0.5", order_by=["metrics.rmse ASC"], max_results=5)
    print(f"\n{'run':<18} {'rmse':>8} {'mae':>8} {'r2':>6}")
    for run in best:
        print(f"{run.name:<18} {run.metrics['rmse']:>8.2f} {run.metrics['mae']:>8.2f} {run.metrics['r2']:>6.3f}")
    if not best:
        print("no run reached r2 > 0.5", file=sys.stderr)
        return 1
    winner = best[0]
    client = lm.get_client()
    history = client.runs.history(winner.id, "rmse")
    print(f"\nbest run: {winner.name} ({winner.id}), rmse {winner.metrics['rmse']:.2f}")
    commit = winner.tags.get("loopml.source.git_commit", "not in git")[:12]
    print(f"  code: {commit}  python {winner.tags['loopml.env.python']}")
    datasets = client.runs.datasets(winner.id)
    print(f"  datasets: {', '.join(f'{d.name} ({d.role}, {d.rows} rows, {d.digest[:12]})' for d in datasets)}")
    print(f"  rmse by step: {', '.join(f'{m.value:.1f}' for m in history)}")
    print(f"  artifacts: {', '.join(a.path for a in client.runs.artifacts(winner.id))}")

    version = lm.models.register(f"runs:/{winner.id}/models/{MODEL}", MODEL, description="best of the quickstart")
    lm.models.set_alias(MODEL, "champion", version.version, reason=f"lowest validation rmse ({winner.name})")
    champion = lm.models.load(f"models:/{MODEL}@champion")
    print(f"\nregistered {version.uri} ({version.flavor}), alias champion -> {version.version}; loaded by alias")
    print("champion on 2012, month by month (demand grew ~60% over 2011, so the error grows):")
    for month, hours in later.groupby(later["dteday"].dt.month):
        month_scores = scores(hours[TARGET], champion.predict(hours[FEATURES]))
        print(f"  2012-{month:02d}  rmse {month_scores['rmse']:7.1f}  r2 {month_scores['r2']:6.3f}")
    problems = client.audit.verify()
    print(f"audit log: {problems or 'intact'} ({len(client.audit.events(limit=10_000))} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
