"""Tree ensembles as plain arrays, evaluated with numpy: no scikit-learn import to load or predict.

Importing scikit-learn and skops costs about 3 s in a fresh process (more than loading a 10 MB forest), and
sklearn's own `predict` has a fixed overhead of about 150 µs per call. For the ensembles below, the sklearn
flavor also stores `trees.npz`: every node of every tree in flat arrays. Prediction walks all trees of all
rows at once, one level per step, so a call costs (tree depth) vectorised numpy operations.

Supported: DecisionTreeRegressor, RandomForestRegressor, ExtraTreesRegressor (single output), and
HistGradientBoostingRegressor with an identity link (squared, absolute or quantile loss) and no
categorical features. Anything else keeps sklearn's own predict. The tests check every supported kind
against sklearn's own predictions on the Bike Sharing data, with missing values.

Exactness: sklearn trees compare float32 inputs with float64 thresholds, gradient boosting float64 inputs;
a missing value goes where sklearn sends it (`missing_go_to_left`); trees are summed in sklearn's order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FILE = "trees.npz"
_FOREST = ("DecisionTreeRegressor", "RandomForestRegressor", "ExtraTreesRegressor")
_IDENTITY_LOSSES = ("squared_error", "absolute_error", "quantile")


def _sklearn_trees(estimators: list[Any]) -> list[dict[str, np.ndarray]]:
    trees = []
    for estimator in estimators:
        tree = estimator.tree_
        if tree.n_outputs != 1 or tree.value.shape[2] != 1:
            raise ValueError("multi-output trees are not compiled")
        missing = getattr(tree, "missing_go_to_left", None)
        trees.append(
            {
                "left": tree.children_left.astype(np.int64),
                "right": tree.children_right.astype(np.int64),
                "feature": tree.feature.astype(np.int64),
                "threshold": tree.threshold.astype(np.float64),
                "value": tree.value[:, 0, 0].astype(np.float64),
                "nan_left": np.zeros(tree.node_count, bool) if missing is None else missing.astype(bool),
                "leaf": tree.children_left == -1,
            }
        )
    return trees


def _boosting_trees(model: Any) -> list[dict[str, np.ndarray]]:
    trees = []
    for (predictor,) in model._predictors:  # one tree per iteration for a regressor
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not compiled")
        trees.append(
            {
                "left": nodes["left"].astype(np.int64),
                "right": nodes["right"].astype(np.int64),
                "feature": nodes["feature_idx"].astype(np.int64),
                "threshold": nodes["num_threshold"].astype(np.float64),
                "value": nodes["value"].astype(np.float64),
                "nan_left": nodes["missing_go_to_left"].astype(bool),
                "leaf": nodes["is_leaf"].astype(bool),
            }
        )
    return trees


def _flatten(trees: list[dict[str, np.ndarray]], **meta: Any) -> dict[str, np.ndarray]:
    """Concatenate the trees; a leaf points at itself and never goes left/right of +inf, so every row can
    take the same number of steps."""
    offsets = np.cumsum([0] + [len(t["value"]) for t in trees[:-1]])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "value", "nan_left")}
    depth = 0
    for offset, tree in zip(offsets, trees, strict=True):
        own = np.arange(len(tree["value"]), dtype=np.int64) + offset
        leaf = tree["leaf"]
        parts["left"].append(np.where(leaf, own, tree["left"] + offset))
        parts["right"].append(np.where(leaf, own, tree["right"] + offset))
        parts["feature"].append(np.where(leaf, 0, tree["feature"]))
        parts["threshold"].append(np.where(leaf, np.inf, tree["threshold"]))
        parts["value"].append(tree["value"])
        parts["nan_left"].append(np.where(leaf, True, tree["nan_left"]))
        depth = max(depth, _depth(tree))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    arrays["roots"] = offsets.astype(np.int64)
    arrays["depth"] = np.array(depth)
    for key, value in meta.items():
        arrays[key] = np.array(value)
    return arrays


def _depth(tree: dict[str, np.ndarray]) -> int:
    depth, frontier = 0, [0]
    while frontier:
        children = [c for n in frontier if not tree["leaf"][n] for c in (int(tree["left"][n]), int(tree["right"][n]))]
        if children:
            depth += 1
        frontier = children
    return depth


def compile_model(model: object) -> dict[str, np.ndarray] | None:
    """Flat arrays for a supported ensemble, or None (the model then keeps sklearn's predict)."""
    kind = type(model).__name__
    try:
        if kind in _FOREST:
            estimators = [model] if kind == "DecisionTreeRegressor" else list(model.estimators_)  # type: ignore[attr-defined]
            return _flatten(_sklearn_trees(estimators), aggregate="mean", baseline=0.0, float32=True)
        if kind == "HistGradientBoostingRegressor" and getattr(model, "loss", None) in _IDENTITY_LOSSES:
            if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):  # type: ignore[attr-defined]
                return None
            baseline = float(np.ravel(model._baseline_prediction)[0])  # type: ignore[attr-defined]
            return _flatten(_boosting_trees(model), aggregate="sum", baseline=baseline, float32=False)
    except (AttributeError, ValueError, IndexError, TypeError):
        return None
    return None


class CompiledTrees:
    """The arrays of `trees.npz` and the vectorised walk over them."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.left, self.right = arrays["left"], arrays["right"]
        self.feature, self.threshold = arrays["feature"], arrays["threshold"]
        self.value, self.nan_left = arrays["value"], arrays["nan_left"]
        self.roots = arrays["roots"]
        self.depth = int(arrays["depth"])
        self.mean = str(arrays["aggregate"]) == "mean"
        self.baseline = float(arrays["baseline"])
        self.float32 = bool(arrays["float32"])

    @classmethod
    def read(cls, path: Path) -> CompiledTrees:
        with np.load(path, allow_pickle=False) as data:
            return cls({key: data[key] for key in data.files})

    @staticmethod
    def write(arrays: dict[str, np.ndarray], path: Path) -> None:
        np.savez(path, **arrays)  # type: ignore[arg-type]

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a 2-D float array whose columns are the model's features, in order."""
        x = np.asarray(matrix, dtype=np.float64)
        if self.float32:
            x = x.astype(np.float32).astype(np.float64)  # sklearn trees compare float32 inputs
        rows = np.arange(len(x))[:, None]
        nodes = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.depth):
            values = x[rows, self.feature[nodes]]
            left = np.where(np.isnan(values), self.nan_left[nodes], values <= self.threshold[nodes])
            nodes = np.where(left, self.left[nodes], self.right[nodes])
        leaves = self.value[nodes]
        # Add tree by tree, left to right, as scikit-learn does (cumsum is sequential; sum is pairwise), so the
        # results are bit for bit sklearn's.
        if self.mean:
            return np.asarray(np.cumsum(leaves, axis=1)[:, -1] / leaves.shape[1])
        start = np.full((len(x), 1), self.baseline)
        return np.asarray(np.cumsum(np.concatenate([start, leaves], axis=1), axis=1)[:, -1])
