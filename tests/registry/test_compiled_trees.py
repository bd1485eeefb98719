"""Tree ensembles predicted from flat arrays: the same numbers as scikit-learn, without importing it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
from loopml.registry.flavors import sklearn_flavor
from loopml.registry.flavors.compiled_trees import FILE, CompiledTrees, LeafMasks
from loopml.registry.flavors.sklearn_flavor import CompiledTreesPredictor

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
    # up to 64 leaves per tree: large batches go through the leaf masks (32- and 64-bit)
    pytest.param(lambda: HistGradientBoostingRegressor(max_leaf_nodes=60, max_iter=20), id="hgb_60_leaves"),
    pytest.param(
        lambda: RandomForestRegressor(n_estimators=12, max_leaf_nodes=20, random_state=0), id="forest_20_leaves"
    ),
    pytest.param(lambda: DecisionTreeRegressor(max_leaf_nodes=2), id="one_split"),
]


@pytest.mark.parametrize("make", MODELS)
def test_compiled_predictions_equal_sklearn(make: object, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    model = make().fit(X, y)  # type: ignore[operator]
    package = save_model(model, tmp_path / "pkg", input_example=X[:5])
    assert FILE in package.manifest.files
    loaded = load_model(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X[:60]), model.predict(X[:60]))  # compiled: bit for bit
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # a large batch: leaf masks or sklearn
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
        f"rows = [dict(zip({FEATURES!r}, [1, 1, h % 24, 0, 3, 1, 1, 0.3, 0.3, 0.5, 0.1])) for h in range(500)]; "
        "print(m.predict(rows)[0]); "  # a large batch: the leaf masks, still without sklearn
        "print(sorted(n for n in ('sklearn', 'skops', 'scipy') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_large_batches_of_small_trees_use_the_leaf_masks(bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    loaded = load_model(tmp_path / "pkg")
    predictor = loaded._predictor
    assert isinstance(predictor, CompiledTreesPredictor)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert predictor._leaf_masks() is not None and predictor._sklearn is None  # sklearn was never loaded


def test_trees_with_more_than_64_leaves_keep_sklearns_predict(
    bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = bike
    model = RandomForestRegressor(n_estimators=5, max_leaf_nodes=100, random_state=0).fit(X, y)
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    arrays = CompiledTrees.read(tmp_path / "pkg" / FILE)
    assert LeafMasks.build(arrays) is None
    np.testing.assert_array_equal(load_model(tmp_path / "pkg").predict(X), model.predict(X))


def test_threads_predicting_at_once_load_the_model_once(
    bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = bike
    model = RandomForestRegressor(n_estimators=5, max_leaf_nodes=100, random_state=0).fit(X, y)
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    loaded = load_model(tmp_path / "pkg")
    loads = []
    real = sklearn_flavor._load_skops

    def counted(*args: object) -> object:
        loads.append(1)
        time.sleep(0.05)  # a slow load: every thread arrives while the first is still loading
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sklearn_flavor, "_load_skops", counted)
    start = threading.Barrier(8)

    def predict(rows: pd.DataFrame) -> np.ndarray:
        start.wait()
        return loaded.predict(rows)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(predict, [X.iloc[i * 100 : i * 100 + 400] for i in range(8)]))
    assert len(loads) == 1
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, model.predict(X.iloc[i * 100 : i * 100 + 400]))
