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


class LeafMasks:
    """Large batches, without a tree walk: each tree's exit leaf found with bit masks (the QuickScorer
    algorithm of Lucchese et al., SIGIR 2015), in a fixed number of vectorised steps per feature.

    Number the leaves of a tree left to right, one bit each. A split node that sends a row right rules out
    every leaf of its left subtree; the exit leaf is the leftmost leaf no split ruled out. The splits of one
    feature that send a row right are those whose threshold is below the row's value (or, for a missing value,
    those that send missing values right), so one table per feature, indexed by where the value falls among
    that feature's thresholds, holds for every tree the leaves still possible: a row's leaves are the AND of
    one table row per feature. Only for ensembles whose trees have at most 64 leaves (gradient boosting's
    default is 31): `build` returns None for the others. Predictions are bit for bit those of the walk.
    """

    ROWS_PER_STEP = 512  # a step's masks and leaf values (rows x trees) stay in the CPU cache

    def __init__(self, trees: CompiledTrees, order: list[np.ndarray], left_leaves: np.ndarray, width: int) -> None:
        self._mean, self._baseline, self._float32 = trees.mean, trees.baseline, trees.float32
        self._n_trees = len(trees.roots)
        self._mask_type = np.uint32 if width == 32 else np.uint64
        self._float_type: type[np.floating[Any]] = np.float32 if width == 32 else np.float64
        self._mantissa = 23 if width == 32 else 52
        exponent_bias = 127 if width == 32 else 1023
        # value of leaf k of tree t at t * width + k; a lone bit 2**k as a float has exponent bits bias + k
        self._values = np.zeros(self._n_trees * width)
        for tree, leaves in enumerate(order):
            self._values[tree * width : tree * width + len(leaves)] = trees.value[leaves]
        self._offsets = (np.arange(self._n_trees, dtype=np.intp) * width - exponent_bias)[:, None]
        self._features: list[tuple[int, np.ndarray, np.ndarray]] = []  # (column, thresholds, table)
        internal = trees.left != np.arange(len(trees.left))
        tree_of = np.searchsorted(trees.roots, np.arange(len(trees.left)), "right") - 1
        all_leaves = ~self._mask_type(0)
        for feature in np.unique(trees.feature[internal]):
            nodes = np.flatnonzero(internal & (trees.feature == feature))
            thresholds = np.unique(trees.threshold[nodes])
            # rows 0..K: the value is above that many thresholds; row K + 1: the value is missing
            table = np.full((len(thresholds) + 2, self._n_trees), all_leaves, dtype=self._mask_type)
            for node in nodes:
                keep = ~self._mask_type(left_leaves[node])
                above = int(np.searchsorted(thresholds, trees.threshold[node])) + 1
                table[above : len(thresholds) + 1, tree_of[node]] &= keep
                if not trees.nan_left[node]:
                    table[len(thresholds) + 1, tree_of[node]] &= keep
            self._features.append((int(feature), thresholds, table))

    @classmethod
    def build(cls, trees: CompiledTrees) -> LeafMasks | None:
        """The tables for `trees`, or None when a tree has more than 64 leaves."""
        order: list[np.ndarray] = []
        left_leaves = np.zeros(len(trees.left), dtype=np.uint64)  # per split: the bits of its left subtree
        for root in trees.roots:
            leaves: list[int] = []
            stack = [int(root)]
            while stack:  # depth first, left before right: leaves come out numbered left to right
                node = stack.pop()
                left, right = int(trees.left[node]), int(trees.right[node])
                if left == node:
                    leaves.append(node)
                else:
                    stack += [right, left]
            if len(leaves) > 64:
                return None
            order.append(np.array(leaves, dtype=np.intp))
            _left_subtree_masks(trees, int(root), leaves, left_leaves)
        width = 32 if max(len(leaves) for leaves in order) <= 32 else 64
        return cls(trees, order, left_leaves, width)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        x = np.asarray(matrix, dtype=np.float64)
        if self._float32:
            x = x.astype(np.float32).astype(np.float64)
        positions = []
        for column, thresholds, _ in self._features:
            values = x[:, column]
            position = np.searchsorted(thresholds, values, "left")
            position[np.isnan(values)] = len(thresholds) + 1
            positions.append(position)
        out = np.empty(len(x))
        for start in range(0, len(x), self.ROWS_PER_STEP):
            stop = min(start + self.ROWS_PER_STEP, len(x))
            out[start:stop] = self._step([p[start:stop] for p in positions])
        return out

    def _step(self, positions: list[np.ndarray]) -> np.ndarray:
        masks = self._features[0][2][positions[0]]  # rows x trees: gathering whole table rows is fast
        for (_, _, table), position in zip(self._features[1:], positions[1:], strict=True):
            np.bitwise_and(masks, table[position], out=masks)
        masks = np.ascontiguousarray(masks.T)  # trees x rows from here: the sum below runs tree by tree
        lowest = masks & np.negative(masks)  # the leftmost possible leaf: a lone bit, exact as a float
        exponents = (lowest.astype(self._float_type).view(self._mask_type) >> self._mantissa).astype(np.intp)
        exponents += self._offsets
        leaves = np.take(self._values, exponents)
        # Reducing over the outer axis adds tree after tree, left to right, as the walk and scikit-learn do.
        total = np.add.reduce(leaves, axis=0, initial=0.0 if self._mean else self._baseline)
        return np.asarray(total / self._n_trees if self._mean else total)


def _left_subtree_masks(trees: CompiledTrees, root: int, leaves: list[int], left_leaves: np.ndarray) -> None:
    """Set, for every split under `root`, the bits of the leaves of its left subtree: those numbered from
    the left subtree's first leaf up to the right subtree's first leaf."""
    first = {leaf: number for number, leaf in enumerate(leaves)}
    stack = [root]
    while stack:
        node = stack.pop()
        left, right = int(trees.left[node]), int(trees.right[node])
        if left == node:
            continue
        begin, end = _first_leaf(trees, left, first), _first_leaf(trees, right, first)
        left_leaves[node] = ((1 << (end - begin)) - 1) << begin
        stack += [left, right]


def _first_leaf(trees: CompiledTrees, node: int, first: dict[int, int]) -> int:
    while int(trees.left[node]) != node:
        node = int(trees.left[node])
    return first[node]
