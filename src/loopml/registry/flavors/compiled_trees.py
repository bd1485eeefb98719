"""Tree ensembles as plain arrays, evaluated with numpy: no scikit-learn import to load or predict.

Importing scikit-learn and skops costs about 3 s in a fresh process (more than loading a 10 MB forest), and
sklearn's own `predict` has a fixed overhead of about 150 µs per call. For the ensembles below, the sklearn
flavor also stores `trees.npz`: every node of every tree in flat arrays. Prediction walks all trees of all
rows at once, one level per step, so a call costs (tree depth) vectorised numpy operations.

Supported: DecisionTreeRegressor, RandomForestRegressor, ExtraTreesRegressor (single output), and
HistGradientBoostingRegressor with an identity link (squared, absolute or quantile loss) and no
categorical features; DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier (single output,
any number of classes) and HistGradientBoostingClassifier (binary or multiclass, no categorical features),
whose class labels are numbers, strings or booleans. Anything else keeps sklearn's own predict. The tests
check every supported kind against sklearn's own predictions on the Bike Sharing data, with missing values.

Exactness: sklearn trees compare float32 inputs with float64 thresholds, gradient boosting float64 inputs;
a missing value goes where sklearn sends it (`missing_go_to_left`); trees are summed in sklearn's order.
A classifier's label is taken from the same scores sklearn's predict takes it from (since 1.4.1, the
oldest version classifiers are compiled for): a forest's mean of its trees' leaf class fractions, summed
tree after tree in `estimators_` order and then divided, first class on a tie (`np.argmax`); gradient
boosting's raw scores, per class the baseline plus that class's trees iteration after iteration, then the
positive class where the one score is > 0 (binary) or the first highest score (multiclass). Neither needs
a probability (sklearn's predict computes no sigmoid or softmax), so the labels are identical, ties
included. Caveats: a forest with `n_jobs` > 1 lets sklearn add trees in the order its threads finish, so
sklearn's own scores can differ in the last bit from call to call; the compiled ones are those of one
thread. Labels stored in an object array (a pandas column of strings) come back in an object array of
Python `str`, `int`, `float` or `bool`; other object labels are not compiled.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

FILE = "trees.npz"
_FOREST_REGRESSORS = ("DecisionTreeRegressor", "RandomForestRegressor", "ExtraTreesRegressor")
_FOREST_CLASSIFIERS = ("DecisionTreeClassifier", "RandomForestClassifier", "ExtraTreesClassifier")
_SINGLE_TREES = ("DecisionTreeRegressor", "DecisionTreeClassifier")
_IDENTITY_LOSSES = ("squared_error", "absolute_error", "quantile")
# 1.4.1 stores class fractions, not counts, in a classifier's `tree_.value` (what its predict_proba returns);
# 1.4.0 made gradient boosting's predict read the raw scores.
_OLDEST_SKLEARN_FOR_CLASSIFIERS = (1, 4, 1)
_PLAIN_LABEL_KINDS = "biufU"  # bool, int, unsigned, float, str: arrays numpy reads back without pickle


def _sklearn_trees(estimators: list[Any], n_classes: int | None) -> list[dict[str, np.ndarray]]:
    """Each tree's nodes; a leaf's value is a number (regressors) or one fraction per class (classifiers)."""
    trees = []
    for estimator in estimators:
        tree = estimator.tree_
        if tree.n_outputs != 1 or tree.value.shape[2] != (1 if n_classes is None else n_classes):
            raise ValueError("multi-output trees are not compiled")
        missing = getattr(tree, "missing_go_to_left", None)
        trees.append(
            {
                "left": tree.children_left.astype(np.int64),
                "right": tree.children_right.astype(np.int64),
                "feature": tree.feature.astype(np.int64),
                "threshold": tree.threshold.astype(np.float64),
                "value": (tree.value[:, 0, 0] if n_classes is None else tree.value[:, 0, :]).astype(np.float64),
                "nan_left": np.zeros(tree.node_count, bool) if missing is None else missing.astype(bool),
                "leaf": tree.children_left == -1,
            }
        )
    return trees


def _boosting_trees(model: Any) -> list[dict[str, np.ndarray]]:
    """Iteration after iteration, and within one the tree of each class in class order (a regressor and a
    binary classifier have one tree per iteration)."""
    trees = []
    for predictors in model._predictors:
        if len(predictors) != model.n_trees_per_iteration_:
            raise ValueError("an iteration without one tree per class")
        for predictor in predictors:
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
        if kind in _FOREST_REGRESSORS:
            estimators = [model] if kind in _SINGLE_TREES else list(model.estimators_)  # type: ignore[attr-defined]
            return _flatten(_sklearn_trees(estimators, None), aggregate="mean", baseline=0.0, float32=True)
        if kind == "HistGradientBoostingRegressor" and getattr(model, "loss", None) in _IDENTITY_LOSSES:
            if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):  # type: ignore[attr-defined]
                return None
            baseline = float(np.ravel(model._baseline_prediction)[0])  # type: ignore[attr-defined]
            return _flatten(_boosting_trees(model), aggregate="sum", baseline=baseline, float32=False)
        if kind in _FOREST_CLASSIFIERS or kind == "HistGradientBoostingClassifier":
            return _compile_classifier(model, kind)
    except (AttributeError, ValueError, IndexError, TypeError):
        return None
    return None


def _compile_classifier(model: Any, kind: str) -> dict[str, np.ndarray] | None:
    labels = _storable_labels(model.classes_)
    if labels is None or _sklearn_version(model) < _OLDEST_SKLEARN_FOR_CLASSIFIERS:
        return None
    if kind in _FOREST_CLASSIFIERS:
        estimators = [model] if kind in _SINGLE_TREES else list(model.estimators_)
        trees = _sklearn_trees(estimators, len(model.classes_))
        return _flatten(trees, aggregate="mean", baseline=0.0, float32=True, **labels)
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        return None
    per_iteration = int(model.n_trees_per_iteration_)
    baselines = np.ravel(model._baseline_prediction).astype(np.float64)
    expected = 1 if len(model.classes_) == 2 else len(model.classes_)
    if len(model.classes_) < 2 or per_iteration != expected or len(baselines) != per_iteration:
        return None
    # One tree per iteration (binary) keeps a regressor's layout: a scalar baseline and one score per row.
    baseline = float(baselines[0]) if per_iteration == 1 else baselines
    trees = _boosting_trees(model)
    return _flatten(
        trees, aggregate="sum", baseline=baseline, float32=False, trees_per_iteration=per_iteration, **labels
    )


def _storable_labels(classes: Any) -> dict[str, np.ndarray] | None:
    """`classes_` as arrays `np.load` reads without pickle, or None for labels that are not plain numbers,
    strings or booleans. An object array's labels are stored typed, with a flag to give them back as objects."""
    classes = np.asarray(classes)
    if classes.ndim != 1:
        return None
    if classes.dtype.kind in _PLAIN_LABEL_KINDS:
        return {"classes": classes, "classes_as_objects": np.array(False)}
    types = {type(label) for label in classes}
    if classes.dtype.kind != "O" or len(types) != 1 or not types <= {str, int, float, bool}:
        return None
    typed = np.array(classes.tolist())
    if typed.dtype.kind not in _PLAIN_LABEL_KINDS:  # an int too large for int64
        return None
    return {"classes": typed, "classes_as_objects": np.array(True)}


def _sklearn_version(model: object) -> tuple[int, ...]:
    package = sys.modules.get(type(model).__module__.split(".", 1)[0])
    return tuple(int(part) for part in re.findall(r"\d+", str(getattr(package, "__version__", "0")))[:3])


class CompiledTrees:
    """The arrays of `trees.npz` and the vectorised walk over them.

    A regressor's file holds no `classes`: its scores are its predictions. A classifier's scores are one per
    class (forests: leaf values are class fractions; multiclass gradient boosting: `trees_per_iteration`
    trees per iteration, one per class) or one per row (binary gradient boosting), turned into labels by
    `labels`. Files written before classifiers were compiled have neither field and load as regressors.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.left, self.right = arrays["left"], arrays["right"]
        self.feature, self.threshold = arrays["feature"], arrays["threshold"]
        self.value, self.nan_left = arrays["value"], arrays["nan_left"]
        self.roots = arrays["roots"]
        self.depth = int(arrays["depth"])
        self.mean = str(arrays["aggregate"]) == "mean"
        self.baselines = np.atleast_1d(np.asarray(arrays["baseline"], dtype=np.float64))  # one per class
        self.float32 = bool(arrays["float32"])
        self.trees_per_iteration = int(arrays["trees_per_iteration"]) if "trees_per_iteration" in arrays else 1
        self.classes: np.ndarray | None = None
        if "classes" in arrays:
            classes = arrays["classes"]
            self.classes = np.array(classes.tolist(), dtype=object) if bool(arrays["classes_as_objects"]) else classes

    @classmethod
    def read(cls, path: Path) -> CompiledTrees:
        with np.load(path, allow_pickle=False) as data:
            return cls({key: data[key] for key in data.files})

    @staticmethod
    def write(arrays: dict[str, np.ndarray], path: Path) -> None:
        np.savez(path, **arrays)  # type: ignore[arg-type]

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a 2-D float array whose columns are the model's features, in order."""
        return self.labels(self.scores(matrix))

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """What sklearn's predict works from: a regressor's predictions, a forest classifier's class
        probabilities (`predict_proba`), gradient boosting's raw scores (`decision_function`)."""
        x = np.asarray(matrix, dtype=np.float64)
        if self.float32:
            x = x.astype(np.float32).astype(np.float64)  # sklearn trees compare float32 inputs
        rows = np.arange(len(x))[:, None]
        nodes = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.depth):
            values = x[rows, self.feature[nodes]]
            left = np.where(np.isnan(values), self.nan_left[nodes], values <= self.threshold[nodes])
            nodes = np.where(left, self.left[nodes], self.right[nodes])
        leaves = self.value[nodes]  # rows x trees, or rows x trees x classes for a forest classifier
        # Add tree by tree, left to right, as scikit-learn does (cumsum is sequential; sum is pairwise), so the
        # results are bit for bit sklearn's.
        if self.mean:
            return np.asarray(np.cumsum(leaves, axis=1)[:, -1] / leaves.shape[1])
        if self.trees_per_iteration == 1:
            start = np.full((len(x), 1), self.baselines[0])
            return np.asarray(np.cumsum(np.concatenate([start, leaves], axis=1), axis=1)[:, -1])
        per_class = leaves.reshape(len(x), len(self.roots) // self.trees_per_iteration, self.trees_per_iteration)
        starts = np.broadcast_to(self.baselines, (len(x), 1, self.trees_per_iteration))
        return np.asarray(np.cumsum(np.concatenate([starts, per_class], axis=1), axis=1)[:, -1])

    def labels(self, scores: np.ndarray) -> np.ndarray:
        """A classifier's labels from its scores, as sklearn's predict picks them; a regressor's scores."""
        if self.classes is None:
            return scores
        if scores.ndim == 1:  # binary gradient boosting: "> 0", so a score of exactly 0 is the first class
            return self.classes.take((scores > 0).astype(np.intp))
        highest: np.ndarray = np.argmax(scores, axis=1)  # the first of equal highest scores, as in sklearn
        return self.classes.take(highest)


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
        self._mean, self._float32 = trees.mean, trees.float32
        self._labels = trees.labels
        self._n_trees = len(trees.roots)
        self._per_iteration = trees.trees_per_iteration
        self._mask_type = np.uint32 if width == 32 else np.uint64
        self._float_type: type[np.floating[Any]] = np.float32 if width == 32 else np.float64
        self._mantissa = 23 if width == 32 else 52
        exponent_bias = 127 if width == 32 else 1023
        # value of leaf k of tree t at t * width + k; a lone bit 2**k as a float has exponent bits bias + k
        self._values = np.zeros((self._n_trees * width, *trees.value.shape[1:]))
        for tree, leaves in enumerate(order):
            self._values[tree * width : tree * width + len(leaves)] = trees.value[leaves]
        self._take_axis = None if self._values.ndim == 1 else 0  # None: a flat take, the fastest
        self._initial = 0.0 if trees.mean else float(trees.baselines[0])
        self._score_shape: tuple[int, ...] = trees.value.shape[1:]  # one score per row, or one per class too
        if self._per_iteration > 1:
            # The first iteration's tree of class k holds baseline_k + leaf: the very sum sklearn computes first
            # ((0 + baseline) + leaf), so every later sum, and the scores, are unchanged to the bit.
            for tree, baseline in enumerate(trees.baselines):
                self._values[tree * width : (tree + 1) * width] += baseline
            self._initial = 0.0
            self._score_shape = (self._per_iteration,)
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
        return self._labels(self.scores(matrix))

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """The same numbers as `CompiledTrees.scores`."""
        x = np.asarray(matrix, dtype=np.float64)
        if len(x) == 1:
            # one row: numpy adds the (trees x 1) leaf values of `_step` as one contiguous run, pairwise, which
            # differs in the last bits from sklearn's tree after tree; two rows are added row by row
            return self.scores(np.concatenate([x, x]))[:1]
        if self._float32:
            x = x.astype(np.float32).astype(np.float64)
        positions = []
        for column, thresholds, _ in self._features:
            values = x[:, column]
            position = np.searchsorted(thresholds, values, "left")
            position[np.isnan(values)] = len(thresholds) + 1
            positions.append(position)
        out = np.empty((len(x), *self._score_shape))
        for start in range(0, len(x), self.ROWS_PER_STEP):
            stop = min(start + self.ROWS_PER_STEP, len(x))
            out[start:stop] = self._step([p[start:stop] for p in positions], stop - start)
        return out

    def _step(self, positions: list[np.ndarray], n_rows: int) -> np.ndarray:
        if not self._features:  # every tree a lone leaf
            masks = np.full((n_rows, self._n_trees), ~self._mask_type(0), dtype=self._mask_type)
        else:
            masks = self._features[0][2][positions[0]]  # rows x trees: gathering whole table rows is fast
        for (_, _, table), position in zip(self._features[1:], positions[1:], strict=True):
            np.bitwise_and(masks, table[position], out=masks)
        masks = np.ascontiguousarray(masks.T)  # trees x rows from here: the sum below runs tree by tree
        lowest = masks & np.negative(masks)  # the leftmost possible leaf: a lone bit, exact as a float
        exponents = (lowest.astype(self._float_type).view(self._mask_type) >> self._mantissa).astype(np.intp)
        exponents += self._offsets
        leaves = np.take(self._values, exponents, axis=self._take_axis)  # trees x rows (x classes)
        if self._per_iteration > 1:
            leaves = leaves.reshape(self._n_trees // self._per_iteration, self._per_iteration, n_rows)
        # Reducing over the outer axis adds tree after tree (iteration after iteration), left to right, as the
        # walk and scikit-learn do.
        total = np.add.reduce(leaves, axis=0, initial=self._initial)
        if self._per_iteration > 1:
            return np.asarray(total.T)  # classes x rows -> rows x classes
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
