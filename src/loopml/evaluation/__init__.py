"""Evaluation of model versions: metrics by task (numpy), per-slice metrics, a baseline on the same rows with
paired bootstrap intervals, and `EvaluationService`, which stores the records.

A service package: imports ports, the domain and other services' public modules (registry, data) only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

if TYPE_CHECKING:
    from loopml.evaluation.data import DATASET_PREFIX, read_rows
    from loopml.evaluation.metrics import LOWER_IS_BETTER, METRICS, Outcomes, compute
    from loopml.evaluation.models import StoreModelSource
    from loopml.evaluation.scoring import Predictor, Scores, score_frame, slice_groups
    from loopml.evaluation.service import (
        DEFAULT_RESAMPLES,
        EvaluationService,
        ModelSource,
        Scored,
        evaluate_rows,
        resolve_baseline,
    )

__all__ = [
    "DATASET_PREFIX",
    "DEFAULT_RESAMPLES",
    "LOWER_IS_BETTER",
    "METRICS",
    "EvaluationService",
    "ModelSource",
    "Outcomes",
    "Predictor",
    "Scored",
    "Scores",
    "StoreModelSource",
    "compute",
    "evaluate_rows",
    "read_rows",
    "resolve_baseline",
    "score_frame",
    "slice_groups",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "DATASET_PREFIX": "loopml.evaluation.data",
        "read_rows": "loopml.evaluation.data",
        "LOWER_IS_BETTER": "loopml.evaluation.metrics",
        "METRICS": "loopml.evaluation.metrics",
        "Outcomes": "loopml.evaluation.metrics",
        "compute": "loopml.evaluation.metrics",
        "StoreModelSource": "loopml.evaluation.models",
        "Predictor": "loopml.evaluation.scoring",
        "Scores": "loopml.evaluation.scoring",
        "score_frame": "loopml.evaluation.scoring",
        "slice_groups": "loopml.evaluation.scoring",
        "DEFAULT_RESAMPLES": "loopml.evaluation.service",
        "EvaluationService": "loopml.evaluation.service",
        "ModelSource": "loopml.evaluation.service",
        "Scored": "loopml.evaluation.service",
        "evaluate_rows": "loopml.evaluation.service",
        "resolve_baseline": "loopml.evaluation.service",
    },
)
