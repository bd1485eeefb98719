"""From a loaded model and labelled rows to metrics: predictions, the task, slices and a baseline comparison.

Everything here runs where the data is (the CLI, a notebook, a CI job, the server's retraining loop); the
result is a `Scores` that the service stores as an `Evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loopml.domain.evaluation import TASKS, MetricComparison
from loopml.errors import InvalidInput
from loopml.evaluation.metrics import Outcomes, compute

__all__ = ["MAX_SLICE_GROUPS", "Predictor", "Scores", "bootstrap_comparison", "score_frame", "slice_metrics"]

MAX_SLICE_GROUPS = 50
"""A slice column with more distinct values keeps its 50 largest groups (numeric columns are cut in quartiles
first when they have more than 20 distinct values)."""
_NUMERIC_BINS_OVER = 20


class Predictor(Protocol):
    """What scoring needs of a model: `LoadedModel` is one."""

    @property
    def signature(self) -> Any: ...

    @property
    def classes(self) -> list[Any] | None: ...

    def predict(self, data: object) -> NDArray[Any]: ...

    def predict_raw(self, data: object) -> NDArray[Any]: ...

    def predict_proba_raw(self, data: object) -> NDArray[Any]: ...


@dataclass(frozen=True)
class Scores:
    """A model scored on labelled rows: the task, outcomes per row and the overall metrics."""

    task: str
    outcomes: Outcomes
    metrics: dict[str, float]
    raw_predictions: NDArray[Any] = field(repr=False)


def _inputs(model: Predictor, frame: pd.DataFrame, label: str) -> Any:
    features = frame.drop(columns=[label])
    signature = model.signature
    if signature is None:
        return features
    return signature.enforce(features, "drop")


def _text(values: Sequence[Any] | NDArray[Any]) -> NDArray[np.str_]:
    return np.asarray([str(v.item() if isinstance(v, np.generic) else v) for v in values], dtype=str)


def _infer_task(model: Predictor, labels: pd.Series, predicted: NDArray[Any]) -> str:
    classes = model.classes
    if classes is not None:
        return "binary" if len(classes) <= 2 else "multiclass"
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        return "regression"
    distinct = len(set(_text(labels.unique())) | set(_text(np.unique(predicted))))
    return "binary" if distinct <= 2 else "multiclass"


def score_frame(model: Predictor, frame: pd.DataFrame, label: str, task: str | None = None) -> Scores:
    """Predict every row of `frame` (the `label` column and columns the signature does not name are not
    given to the model) and compute the task's metrics. `task`: regression, binary or multiclass; inferred
    from the model when None (a classifier with 2 classes is binary)."""
    if label not in frame.columns:
        raise InvalidInput(
            f"the evaluation data has no label column {label!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if task is not None and task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if len(frame) == 0:
        raise InvalidInput("the evaluation data has no rows")
    labels = frame[label]
    if labels.isna().any():
        raise InvalidInput(
            f"label column {label!r} has {int(labels.isna().sum())} missing values; drop those rows first"
        )
    inputs = _inputs(model, frame, label)
    predicted = np.asarray(model.predict_raw(inputs))
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    if predicted.ndim != 1 or predicted.shape[0] != len(frame):
        raise InvalidInput(
            f"the model gave predictions of shape {predicted.shape} for {len(frame)} rows; "
            "evaluation needs one value per row"
        )
    task = task or _infer_task(model, labels, predicted)
    if task == "regression":
        try:
            truth = labels.to_numpy(dtype=np.float64)
            values = predicted.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"a regression needs numeric labels and predictions; label column {label!r} is {labels.dtype}"
            ) from None
        outcomes = Outcomes("regression", truth, values)
    else:
        outcomes = _classification(model, task, labels, predicted, inputs)
    return Scores(task, outcomes, compute(outcomes), predicted)


def _classification(model: Predictor, task: str, labels: pd.Series, predicted: NDArray[Any], inputs: Any) -> Outcomes:
    known = model.classes
    label_text, predicted_text = _text(labels.to_numpy()), _text(predicted)
    classes = (
        [str(c.item() if isinstance(c, np.generic) else c) for c in known]
        if known is not None
        else sorted(set(label_text) | set(predicted_text))
    )
    if task == "binary" and len(classes) > 2:
        raise InvalidInput(f"a binary task has 2 classes; the model and labels have {len(classes)}: {classes[:10]}")
    if task == "binary" and len(classes) == 1:
        classes = [*classes, *(c for c in sorted(set(label_text)) if c not in classes)][:2]
    unknown = sorted(set(label_text) - set(classes))
    if unknown:
        raise InvalidInput(f"labels {unknown[:5]} are not classes of the model (its classes: {classes[:10]})")
    score: NDArray[np.float64] | None = None
    if known is not None:
        probabilities = np.asarray(model.predict_proba_raw(inputs), dtype=np.float64)
        score = probabilities[:, 1] if task == "binary" else probabilities
    if task == "binary":
        positive = classes[-1]
        return Outcomes("binary", label_text == positive, predicted_text == positive, score, tuple(classes))
    code = {name: i for i, name in enumerate(classes)}
    truth = np.fromiter((code[v] for v in label_text), dtype=np.int64, count=len(label_text))
    chosen = np.fromiter((code.get(v, -1) for v in predicted_text), dtype=np.int64, count=len(predicted_text))
    if (chosen < 0).any():
        raise InvalidInput("the model predicted a class it does not list among its classes")
    return Outcomes("multiclass", truth, chosen, score, tuple(classes))


def slice_groups(column: pd.Series) -> dict[str, NDArray[np.bool_]]:
    """Row masks per group of a slice column: one group per value, or quartile bins of a numeric column with
    many values; at most `MAX_SLICE_GROUPS`, the largest. Missing values form the group `null`."""
    values = column
    if (
        pd.api.types.is_numeric_dtype(column)
        and not pd.api.types.is_bool_dtype(column)
        and column.nunique() > _NUMERIC_BINS_OVER
    ):
        values = pd.qcut(column, 4, duplicates="drop").astype(str)
    keys = (
        values.astype(object)
        .where(values.notna(), "null")
        .map(lambda v: str(v.item() if isinstance(v, np.generic) else v))
    )
    counts = keys.value_counts()
    codes = keys.to_numpy()
    return {str(key): codes == key for key in counts.index[:MAX_SLICE_GROUPS]}


def slice_metrics(
    frame: pd.DataFrame, outcomes: Outcomes, columns: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """column -> group -> metrics of those rows, with `rows`."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for column in columns:
        if column not in frame.columns:
            raise InvalidInput(f"slice column {column!r} is not in the evaluation data")
        found[column] = {
            group: {"rows": float(mask.sum()), **compute(outcomes.take(mask))}
            for group, mask in slice_groups(frame[column]).items()
        }
    return found


def bootstrap_comparison(
    candidate: Outcomes, baseline: Outcomes, resamples: int = 200, seed: int = 0
) -> tuple[MetricComparison, ...]:
    """Each metric of `candidate` next to `baseline`'s on the same rows, with the 95% paired bootstrap interval
    of the difference (each resample draws the same rows for both; numpy's PCG64 seeded with `seed`)."""
    if resamples < 0:
        raise InvalidInput(f"bootstrap resamples must be 0 or more, got {resamples}")
    ours, theirs = compute(candidate), compute(baseline)
    shared = [m for m in ours if m in theirs]
    differences: dict[str, list[float]] = {m: [] for m in shared}
    rng = np.random.default_rng(seed)
    n = len(candidate)
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        a, b = compute(candidate.take(rows)), compute(baseline.take(rows))
        for metric in shared:
            differences[metric].append(a[metric] - b[metric])
    comparison = []
    for metric in shared:
        drawn = np.asarray([d for d in differences[metric] if not math.isnan(d)])
        low, high = (
            (float(np.percentile(drawn, 2.5)), float(np.percentile(drawn, 97.5)))
            if drawn.size
            else (math.nan, math.nan)
        )
        comparison.append(
            MetricComparison(metric, ours[metric], theirs[metric], ours[metric] - theirs[metric], low, high)
        )
    return tuple(comparison)
