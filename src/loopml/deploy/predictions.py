"""What a version predicted, by kind, and the distance between two versions' predictions.

Each prediction (one record's answer, as the request log holds it after JSON decoding) is of one kind:

- `number`: a float (a regressor's output; a list of floats that are not probabilities is flattened);
- `label`: a string, a boolean or an integer (a classifier answering class labels);
- `probabilities`: a list of at least two numbers in [0, 1] summing to 1 (one probability per class).

The distance between two samples depends on their kind: the normalised Wasserstein distance for numbers
(by the pooled spread when the stable sample is constant), the PSI of the class shares for labels, and the
largest normalised Wasserstein distance of one class's probability for probabilities. Two samples of
different kinds, or of a kind no distance is defined for, have no distance: `distance` says why instead.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from loopml.monitoring import psi, wasserstein_normalised

__all__ = ["Distance", "PredictionKind", "distance", "flatten_predictions", "predicted_class", "prediction_kind"]

PredictionKind = Literal["number", "label", "probabilities"]

PROBABILITY_SUM_TOLERANCE = 1e-3
"""How far from 1 a list's sum may be for the list to be read as class probabilities."""


@dataclass(frozen=True)
class Distance:
    """The distance between two prediction samples (None when it cannot be computed, with the reason)."""

    value: float | None
    kind: PredictionKind | None
    method: str | None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def flatten_predictions(outputs: Iterable[object]) -> list[float]:
    """The numbers in `outputs` (nested lists flattened; booleans, strings and objects left out)."""
    found: list[float] = []
    stack = list(outputs)[::-1]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item):
            found.append(float(item))
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def prediction_kind(value: object) -> PredictionKind | None:
    """The kind of one prediction (see the module docstring); None for anything else (objects, nulls)."""
    if isinstance(value, bool | str) or (isinstance(value, int) and not isinstance(value, bool)):
        return "label"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
        numbers = [float(v) for v in value]
        probabilities = len(numbers) >= 2 and all(0.0 <= v <= 1.0 for v in numbers)
        if probabilities and abs(sum(numbers) - 1.0) <= PROBABILITY_SUM_TOLERANCE:
            return "probabilities"
        return "number"
    return None


def predicted_class(value: object) -> object:
    """The class a prediction names: the label itself, or the index of the largest probability."""
    if isinstance(value, list | tuple):
        return int(np.argmax(np.asarray(value, dtype=np.float64)))
    return value


def _sample_kind(predictions: Sequence[object]) -> tuple[PredictionKind | None, str | None]:
    kinds = Counter(prediction_kind(p) for p in predictions)
    if None in kinds:
        return None, f"{kinds[None]} predictions are neither numbers, class labels nor class probabilities"
    if len(kinds) > 1:
        return None, f"predictions of mixed kinds ({', '.join(sorted(str(k) for k in kinds))})"
    kind = next(iter(kinds))
    if kind == "probabilities" and len({len(p) for p in predictions if isinstance(p, list | tuple)}) > 1:
        return None, "probability lists of different lengths"
    return kind, None


def _numeric_distance(stable: ArrayLike, candidate: ArrayLike) -> float:
    ours = np.asarray(stable, dtype=np.float64)
    theirs = np.asarray(candidate, dtype=np.float64)
    value = wasserstein_normalised(ours, theirs)
    if math.isinf(value):  # the stable predictions are constant: scale by the pooled spread instead
        pooled = float(np.std(np.concatenate([ours, theirs])))
        shift = abs(float(theirs.mean() - ours.mean()))
        value = shift / pooled if pooled > 0 else 0.0
    return value


def _text(value: object) -> str:
    """A class label as text, so that 1, 1.0 and "1" name one class (as the monitoring metrics read them)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def distance(stable: Sequence[object], candidate: Sequence[object]) -> Distance:
    """The distance between the stable and the candidate predictions, by their kind."""
    if not len(stable) or not len(candidate):
        side = "stable" if not len(stable) else "candidate"
        return Distance(None, None, None, f"no successful predictions of the {side} version to compare")
    stable_kind, why = _sample_kind(stable)
    if stable_kind is None:
        return Distance(None, None, None, f"stable version: {why}")
    candidate_kind, why = _sample_kind(candidate)
    if candidate_kind is None:
        return Distance(None, None, None, f"candidate version: {why}")
    if stable_kind != candidate_kind:
        return Distance(
            None, None, None, f"the stable version predicts {stable_kind}s and the candidate {candidate_kind}s"
        )
    if stable_kind == "number":
        values = _numeric_distance(flatten_predictions(stable), flatten_predictions(candidate))
        return Distance(values, "number", "wasserstein_normalised")
    if stable_kind == "label":
        ours, theirs = Counter(map(_text, stable)), Counter(map(_text, candidate))
        classes = sorted(set(ours) | set(theirs))
        shares_stable = np.asarray([ours[c] for c in classes], dtype=np.float64) / len(stable)
        shares_candidate = np.asarray([theirs[c] for c in classes], dtype=np.float64) / len(candidate)
        details = {
            "class_shares": {
                c: {"stable": round(float(s), 4), "candidate": round(float(t), 4)}
                for c, s, t in zip(classes, shares_stable, shares_candidate, strict=True)
            },
            "total_variation": round(float(np.abs(shares_stable - shares_candidate).sum() / 2), 4),
        }
        return Distance(psi(shares_stable, shares_candidate), "label", "psi_of_class_shares", details=details)
    width_stable = len(stable[0])  # type: ignore[arg-type]
    width_candidate = len(candidate[0])  # type: ignore[arg-type]
    if width_stable != width_candidate:
        return Distance(
            None,
            None,
            None,
            f"the stable version gives {width_stable} class probabilities and the candidate {width_candidate}",
        )
    ours_matrix = np.asarray(stable, dtype=np.float64)
    theirs_matrix = np.asarray(candidate, dtype=np.float64)
    per_class = [_numeric_distance(ours_matrix[:, k], theirs_matrix[:, k]) for k in range(width_stable)]
    return Distance(
        max(per_class),
        "probabilities",
        "max_class_wasserstein_normalised",
        details={"per_class": [round(v, 4) for v in per_class]},
    )
