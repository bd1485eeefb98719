"""Tree ensembles predicted from flat arrays: the same numbers as scikit-learn, without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from loopml.registry import load_model, save_model
from loopml.registry.flavors.compiled_trees import FILE

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    *("season", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit"),
    *("temp", "atemp", "hum", "windspeed"),
]


@pytest.fixture(scope="module")
def bike() -> tuple[pd.DataFrame, pd.Series]:
    hours = pd.read_csv(DATA).head(4000)
    X = hours[FEATURES].astype(float)
    X.loc[X.index[::9], "hum"] = np.nan  # missing values must go where sklearn sends them
    return X, hours["cnt"]


MODELS = [
    pytest.param(lambda: DecisionTreeRegressor(max_depth=10, random_state=0), id="decision_tree"),
    pytest.param(lambda: RandomForestRegressor(n_estimators=15, max_depth=12, random_state=0), id="random_forest"),
    pytest.param(lambda: ExtraTreesRegressor(n_estimators=10, max_depth=10, random_state=0), id="extra_trees"),
    pytest.param(lambda: HistGradientBoostingRegressor(max_iter=40, random_state=0), id="hist_gradient_boosting"),
]


@pytest.mark.parametrize("make", MODELS)
def test_compiled_predictions_equal_sklearn(make: object, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    model = make().fit(X, y)  # type: ignore[operator]
    package = save_model(model, tmp_path / "pkg", input_example=X[:5])
    assert FILE in package.manifest.files
    loaded = load_model(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X[:60]), model.predict(X[:60]))  # compiled: bit for bit
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # a large batch: sklearn's own predict
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()[:3]), model.predict(X[:3]))
    assert type(loaded.native) is type(model)  # the sklearn object is still there, loaded on demand


def test_other_models_keep_sklearns_predict(bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, y > 200)
    package = save_model(model, tmp_path / "pkg", input_example=X[:5])
    assert FILE not in package.manifest.files
    np.testing.assert_array_equal(load_model(tmp_path / "pkg").predict(X[:50]), model.predict(X[:50]))


def test_loading_and_predicting_imports_no_sklearn(bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    save_model(HistGradientBoostingRegressor(max_iter=20).fit(X, y), tmp_path / "pkg", input_example=X[:5])
    code = (
        "import sys; from loopml.registry import load_model; "
        f"m = load_model({str(tmp_path / 'pkg')!r}); "
        f"print(m.predict([dict(zip({FEATURES!r}, [1, 1, 8, 0, 3, 1, 1, 0.3, 0.3, 0.5, 0.1]))])[0]); "
        "print(sorted(n for n in ('sklearn', 'skops', 'scipy') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
