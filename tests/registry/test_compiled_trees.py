"""Tree ensembles predicted from flat arrays: the same numbers as scikit-learn, without importing it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from loopml.registry import load_model, save_model
from loopml.registry.flavors import sklearn_flavor
from loopml.registry.flavors.compiled_trees import FILE, CompiledTrees, LeafMasks, compile_model
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


@pytest.mark.parametrize("make", MODELS)
def test_after_warm_up_small_batches_use_the_leaf_masks_and_still_equal_sklearn(
    make: object, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = bike
    model = make().fit(X, y)  # type: ignore[operator]
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    loaded = load_model(tmp_path / "pkg")
    loaded.warm_up()
    predictor: Any = loaded._predictor
    built = predictor._masks is not None
    for start, rows in ((0, 1), (7, 1), (100, 2), (200, 33), (300, 64)):  # one row alone: added tree after tree
        batch = X.to_numpy()[start : start + rows]
        np.testing.assert_array_equal(loaded.predict_raw(batch), model.predict(X[start : start + rows]))
    assert predictor._sklearn is None  # small batches never need scikit-learn
    assert built is (max(_leaf_counts(model)) <= 64)


def _leaf_counts(model: Any) -> list[int]:
    if hasattr(model, "tree_"):
        return [int(model.tree_.n_leaves)]
    if hasattr(model, "estimators_"):
        return [int(estimator.tree_.n_leaves) for estimator in model.estimators_]
    return [int(tree.get_n_leaf_nodes()) for iteration in model._predictors for tree in iteration]


def _classes(y: pd.Series, kind: str) -> pd.Series:
    """Targets for the classifiers: two string labels, two booleans, three integer labels, three string labels."""
    if kind == "two_booleans":
        return y > 150
    if kind == "two_strings":
        return pd.Series(np.where(y > 150, "busy", "quiet"), index=y.index)  # an object column, as pandas reads
    three = pd.cut(y, [-1, 40, 150, 10**6], labels=False).astype(np.int64)
    return three if kind == "three_ints" else three.map({0: "low", 1: "mid", 2: "high"}).astype(object)


TARGETS = ["two_strings", "two_booleans", "three_ints", "three_strings"]
# (model, whether large batches use the leaf masks: every tree has at most 64 leaves)
CLASSIFIERS = [
    pytest.param(lambda: DecisionTreeClassifier(max_depth=9, random_state=0), False, id="decision_tree"),
    pytest.param(lambda: DecisionTreeClassifier(max_leaf_nodes=40, random_state=0), True, id="tree_40_leaves"),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=12, max_leaf_nodes=40, random_state=0), True, id="random_forest"
    ),
    pytest.param(lambda: RandomForestClassifier(n_estimators=4, random_state=0), False, id="forest_deep_trees"),
    pytest.param(
        lambda: ExtraTreesClassifier(n_estimators=10, max_leaf_nodes=40, random_state=0), True, id="extra_trees"
    ),
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), True, id="hist_gradient_boosting"
    ),
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=60, random_state=0), True, id="hgb_60_leaves"
    ),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("make", "masks"), CLASSIFIERS)
def test_compiled_classifiers_predict_sklearns_labels(
    make: object, masks: bool, target: str, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = bike
    model = make().fit(X, _classes(y, target))  # type: ignore[operator]
    package = save_model(model, tmp_path / "pkg", input_example=X[:5])
    assert FILE in package.manifest.files
    loaded = load_model(tmp_path / "pkg")
    predictor = loaded._predictor
    assert isinstance(predictor, CompiledTreesPredictor)
    for rows in (X[:60], X):  # the tree walk, then a large batch: the leaf masks (or sklearn past 64 leaves)
        got, expected = loaded.predict(rows), model.predict(rows)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype and type(got[0]) is type(expected[0])
    assert (predictor._leaf_masks() is not None) is masks and (predictor._sklearn is None) is masks


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("make", "masks"), CLASSIFIERS)
def test_compiled_classifier_scores_are_sklearns_to_the_bit(
    make: object, masks: bool, target: str, bike: tuple[pd.DataFrame, pd.Series]
) -> None:
    """The labels come from the very numbers sklearn's predict compares: predict_proba for forests,
    decision_function (the raw scores) for gradient boosting, so a near-tie goes the same way."""
    X, y = bike
    model = make().fit(X, _classes(y, target))  # type: ignore[operator]
    trees = CompiledTrees(compile_model(model))  # type: ignore[arg-type]
    boosting = isinstance(model, HistGradientBoostingClassifier)
    expected = model.decision_function(X) if boosting else model.predict_proba(X)
    np.testing.assert_array_equal(trees.scores(X.to_numpy()), expected)
    leaf_masks = LeafMasks.build(trees)
    assert (leaf_masks is not None) is masks
    if leaf_masks is not None:
        np.testing.assert_array_equal(leaf_masks.scores(X.to_numpy()), expected)
        np.testing.assert_array_equal(leaf_masks.predict(X.to_numpy()), model.predict(X))


@pytest.mark.parametrize(
    ("make", "masks"),
    [
        pytest.param(lambda: RandomForestClassifier(n_estimators=4, random_state=0), False, id="forest_walk"),
        pytest.param(
            lambda: RandomForestClassifier(n_estimators=2, max_leaf_nodes=64, random_state=0), True, id="forest_masks"
        ),
    ],
)
@pytest.mark.parametrize("target", TARGETS)
def test_tied_class_probabilities_pick_sklearns_class(
    make: object, masks: bool, target: str, bike: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = bike
    model = make().fit(X, _classes(y, target))  # type: ignore[operator]
    top_two = np.sort(model.predict_proba(X), axis=1)[:, -2:]
    tied = top_two[:, 0] == top_two[:, 1]
    assert tied.any()  # trees of (nearly) pure leaves disagree on some rows: [0.5, 0.5] and the like
    trees = CompiledTrees(compile_model(model))  # type: ignore[arg-type]
    np.testing.assert_array_equal(trees.predict(X.to_numpy()[tied]), model.predict(X[tied]))
    leaf_masks = LeafMasks.build(trees)
    assert (leaf_masks is not None) is masks
    if leaf_masks is not None:
        np.testing.assert_array_equal(leaf_masks.predict(X.to_numpy())[tied], model.predict(X[tied]))


@pytest.mark.parametrize("target", TARGETS)
def test_gradient_boosting_scores_of_zero_pick_the_first_class(
    target: str, bike: tuple[pd.DataFrame, pd.Series]
) -> None:
    """sklearn's binary rule is score > 0 (not >= 0) and its multiclass one the first highest score: with
    every score 0, both give the first class."""
    X, y = bike
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, _classes(y, target))
    model._baseline_prediction[:] = 0.0
    for predictors in model._predictors:
        for predictor in predictors:
            predictor.nodes["value"] = 0.0
    expected = model.predict(X)
    assert (expected == model.classes_[0]).all()
    trees = CompiledTrees(compile_model(model))  # type: ignore[arg-type]
    np.testing.assert_array_equal(trees.predict(X.to_numpy()), expected)
    np.testing.assert_array_equal(LeafMasks.build(trees).predict(X.to_numpy()), expected)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "make", [pytest.param(DecisionTreeClassifier, id="one_class"), pytest.param(DecisionTreeRegressor, id="constant")]
)
def test_a_tree_that_is_one_leaf_predicts_large_batches(make: type, bike: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = bike
    model = make().fit(X, np.full(len(X), 7))
    trees = CompiledTrees(compile_model(model))  # type: ignore[arg-type]
    leaf_masks = LeafMasks.build(trees)  # no split at all: no feature table
    assert leaf_masks is not None
    np.testing.assert_array_equal(leaf_masks.predict(X.to_numpy()), model.predict(X))
    np.testing.assert_array_equal(trees.predict(X.to_numpy()[:5]), model.predict(X[:5]))


def test_labels_that_are_not_plain_values_keep_sklearns_predict(bike: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = bike
    model = DecisionTreeClassifier(max_depth=3).fit(X, y > 150)
    assert compile_model(model) is not None  # booleans are plain labels
    tuples = np.empty(2, dtype=object)  # labels numpy stores only with pickle
    tuples[0], tuples[1] = (0, "quiet"), (1, "busy")
    model.classes_ = tuples
    assert compile_model(model) is None
    model.classes_ = np.array([1, "busy"], dtype=object)  # mixed types
    assert compile_model(model) is None


def test_regressor_files_keep_the_format_of_older_packages(
    bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    """Packages saved before classifiers were compiled hold exactly these arrays, and still predict."""
    X, y = bike
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    arrays = compile_model(model)
    assert arrays is not None
    older = {"left", "right", "feature", "threshold", "value", "nan_left", "roots", "depth"}
    assert set(arrays) == older | {"aggregate", "baseline", "float32"}
    CompiledTrees.write(arrays, tmp_path / FILE)
    trees = CompiledTrees.read(tmp_path / FILE)
    assert trees.classes is None
    np.testing.assert_array_equal(trees.predict(X.to_numpy()[:60]), model.predict(X[:60]))
    np.testing.assert_array_equal(LeafMasks.build(trees).predict(X.to_numpy()), model.predict(X))  # type: ignore[union-attr]


def test_other_models_keep_sklearns_predict(bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = bike
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=["season"]).fit(X, y > 200)
    assert compile_model(categorical) is None
    two_outputs = RandomForestClassifier(n_estimators=3, max_depth=4).fit(X, np.column_stack([y > 200, y > 50]))
    assert compile_model(two_outputs) is None
    X = X.fillna(0.0)  # no missing values in GradientBoostingClassifier
    model = GradientBoostingClassifier(n_estimators=10).fit(X, y > 200)
    package = save_model(model, tmp_path / "pkg", input_example=X[:5])
    assert FILE not in package.manifest.files
    np.testing.assert_array_equal(load_model(tmp_path / "pkg").predict(X[:50]), model.predict(X[:50]))


@pytest.mark.parametrize(
    ("make", "target"),
    [
        pytest.param(lambda: HistGradientBoostingRegressor(max_iter=20), None, id="regressor"),
        pytest.param(lambda: HistGradientBoostingClassifier(max_iter=20), "three_strings", id="hgb_classifier"),
        pytest.param(
            lambda: RandomForestClassifier(n_estimators=5, max_leaf_nodes=40), "two_strings", id="forest_classifier"
        ),
    ],
)
def test_loading_and_predicting_imports_no_sklearn(
    make: object, target: str | None, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = bike
    model = make().fit(X, y if target is None else _classes(y, target))  # type: ignore[operator]
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    one = [1, 1, 8, 0, 3, 1, 1, 0.3, 0.3, 0.5, 0.1]
    rows = [[1, 1, h % 24, 0, 3, 1, 1, 0.3, 0.3, (h % 7) / 7 if h % 9 else None, 0.1] for h in range(500)]
    code = (
        "import sys; from loopml.registry import load_model; "
        f"m = load_model({str(tmp_path / 'pkg')!r}); "
        f"print(m.predict([dict(zip({FEATURES!r}, {one!r}))]).tolist()); "
        f"print(m.predict([dict(zip({FEATURES!r}, row)) for row in {rows!r}]).tolist()); "  # the leaf masks
        "print(sorted(n for n in ('sklearn', 'skops', 'scipy') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    single, batch, modules = done.stdout.splitlines()[-3:]
    assert modules == "[]"
    assert single == str(model.predict(pd.DataFrame([one], columns=FEATURES, dtype=float)).tolist())
    assert batch == str(model.predict(pd.DataFrame(rows, columns=FEATURES, dtype=float)).tolist())


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


def test_columns_in_another_order_are_put_in_the_models_order(
    bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = bike
    model = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(X, y)
    save_model(model, tmp_path / "pkg", input_example=X[:5])
    loaded = load_model(tmp_path / "pkg")
    shuffled = X[list(reversed(FEATURES))]
    for rows in (3, 500):  # the walk and the leaf masks
        np.testing.assert_array_equal(loaded.predict_raw(shuffled[:rows]), model.predict(X[:rows]))
        np.testing.assert_array_equal(loaded.predict(shuffled[:rows]), model.predict(X[:rows]))
